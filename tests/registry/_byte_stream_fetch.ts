// The runtime's `fetch` with its answers' bodies handed on as byte streams, as Deno's and
// browsers' are: for the tests of what the transfer engine does with each kind of body.

/**
 * The runtime's `fetch`, its answers' bodies handed on as byte streams; `byobReads` counts the
 * reads that came with a reader's buffer, `largest` the largest such buffer.
 */
export function byteStreamFetch(): {
  fetch: typeof fetch;
  seen: { byobReads: number; largest: number };
} {
  const seen = { byobReads: 0, largest: 0 };
  const fetchBytes = async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await fetch(input, init);
    const inner = response.body?.getReader();
    const body = inner && new ReadableStream({
      type: "bytes",
      async pull(controller) {
        const view = controller.byobRequest?.view;
        if (view) {
          seen.byobReads++;
          seen.largest = Math.max(seen.largest, view.byteLength);
        }
        const { done, value } = await inner.read();
        if (done) {
          controller.close();
          controller.byobRequest?.respond(0);
        } else controller.enqueue(value.slice());
      },
      cancel: (reason) => inner.cancel(reason),
    });
    return {
      status: response.status,
      headers: response.headers,
      url: response.url,
      body: body ?? null,
    } as Response;
  };
  return { fetch: fetchBytes as typeof fetch, seen };
}
