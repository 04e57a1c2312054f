// dockerd's API over its unix socket, each way this runtime has (`fetch` on Deno and Bun,
// `node:http` everywhere) against the real dockerd: the same answers, a streamed save read
// byte for byte alike, a streamed load, dockerd's refusals, a failing body reported as its
// own error, an abort, and a socket nobody listens on.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { RegistryError } from "../src/registry/mod.ts";
import { unixRequest, unixWays } from "../src/registry/ends/_unix_http.ts";
import { daemons, randomLayers, stopDaemons, tempDir } from "./registry/_daemons.ts";
import { dockerArchive } from "./registry/_docker_archive.ts";
import { chunked, noise, tarHeader } from "./registry/_image_builder.ts";
import { runtimeName } from "./_runtime.ts";

after(stopDaemons);

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

test("unixRequest: each way this runtime has gives dockerd's answers alike", async () => {
  const { dockerd } = await daemons();
  const socket = dockerd.host.slice("unix://".length);
  const ways = unixWays();
  assert.deepEqual(
    ways,
    runtimeName === "node" ? ["node-http"] : ["fetch", "node-http"],
    "Deno and Bun dial sockets with fetch first",
  );
  const saves = new Set<string>();
  let first: string | undefined; // the image every way saves
  for (const way of ways) {
    const info = await unixRequest(socket, { method: "GET", path: "/info" }, way);
    assert.equal(info.status, 200, way);
    assert.match(info.contentType, /^application\/json/, way);
    assert.equal(JSON.parse(await text(info.body)).Driver, "vfs", way);

    // A load streamed in, then the save streamed out.
    const image = dockerArchive(`api/${way}:1`, randomLayers(2));
    const load = await unixRequest(socket, {
      method: "POST",
      path: "/images/load?quiet=1",
      headers: { "content-type": "application/x-tar" },
      body: chunked(image.archive, 65_536),
    }, way);
    assert.equal(load.status, 200, `${way}: ${await text(load.body)}`);
    const inspect = await unixRequest(
      socket,
      { method: "GET", path: `/images/api/${way}:1/json` },
      way,
    );
    assert.equal(JSON.parse(await text(inspect.body)).Id, image.imageID, way);
    first ??= image.imageID;
    const save = await unixRequest(socket, { method: "GET", path: `/images/${first}/get` }, way);
    assert.equal(save.status, 200, way);
    saves.add(await sha256Of(save.body));

    const missing = await unixRequest(
      socket,
      { method: "GET", path: "/images/no/such:1/json" },
      way,
    );
    assert.equal(missing.status, 404, way);
    assert.match(JSON.parse(await text(missing.body)).message, /No such image/, way);
  }
  assert.equal(saves.size, 1, [...saves].join("\n"));
});

test("unixRequest: a failing body is reported as its own error; an abort stops a read; no listener, an error", async () => {
  const { dockerd } = await daemons();
  const socket = dockerd.host.slice("unix://".length);
  for (const way of unixWays()) {
    const lie = new RegistryError("DIGEST_INVALID", "the layer is not what it says");
    let sent = 0;
    // An entry of 1 GiB begun: dockerd waits for the rest, so only the body's failure ends it.
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ === 0) controller.enqueue(tarHeader("layer.tar", 1 << 30));
        else if (sent < 6) controller.enqueue(new Uint8Array(65_536));
        else controller.error(lie);
      },
    });
    await assert.rejects(
      async () => {
        const answer = await unixRequest(socket, {
          method: "POST",
          path: "/images/load?quiet=1",
          headers: { "content-type": "application/x-tar" },
          body: failing,
        }, way);
        await text(answer.body);
      },
      (error) => error === lie,
      way,
    );

    const { dockerd: again } = await daemons();
    // Far more than what is held unread (512 KiB, and the socket's buffers): the abort lands
    // while most of the save has not come yet.
    const big = [[{ name: "big.bin", data: noise(32 << 20, Date.now() >>> 0) }]];
    const image = dockerArchive(`api/abort-${way}:1`, big);
    await again.docker(["load"], image.archive);
    const stop = new AbortController();
    const save = await unixRequest(socket, {
      method: "GET",
      path: `/images/${image.imageID}/get`,
      signal: stop.signal,
    }, way);
    const reader = save.body.getReader();
    await reader.read();
    stop.abort(new Error("enough"));
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, way);

    await assert.rejects(
      unixRequest(join(tempDir(), "nobody.sock"), { method: "GET", path: "/info" }, way),
      way,
    );
  }
});
