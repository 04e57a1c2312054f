// A child process for the node:http transport's tests, so what it measures or trusts is its
// own: `put <url> <mib>` PUTs `mib` MiB from a stream that makes each 1 MiB chunk only when
// asked (a transport that reads ahead of the socket holds every chunk it read) and prints its
// status, the chunks it made and its peak RSS; `get <url>` prints the status and body of a GET
// (with the CAs the process trusts, e.g. through NODE_EXTRA_CA_CERTS).
//
//     node _node_transport_child.ts put <url> <mib> | get <url>
import process from "node:process";
import { nodeHttpTransport } from "../../src/registry/transport/node_http.ts";

const [mode, url, mib] = process.argv.slice(2);
const signal = new AbortController().signal;
if (mode === "get") {
  const response = await nodeHttpTransport!({ method: "GET", url: url!, headers: {}, signal });
  console.log(
    JSON.stringify({ status: response.status, body: await new Response(response.body).text() }),
  );
} else {
  const chunks = Number(mib);
  let made = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (made === chunks) return controller.close();
      controller.enqueue(new Uint8Array(1 << 20).fill(made++ & 0xff));
    },
  }, { highWaterMark: 0 });
  const response = await nodeHttpTransport!({
    method: "PUT",
    url: url!,
    headers: { "content-length": String(chunks << 20) },
    body,
    signal,
  });
  await response.body?.cancel();
  console.log(JSON.stringify({
    status: response.status,
    made,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }));
}
