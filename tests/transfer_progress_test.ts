// The progress of a copy between ends that are no registry: each layer's bytes as the
// destination reads them (`pull` events from 0 to its size, the last one final), and a layer
// the destination holds already told as found (`exists`), as the CLI's --json shows them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ociLayoutStore } from "../src/registry/mod.ts";
import { callCli, tempDir } from "./_cli.ts";
import { buildImage, noise } from "./registry/_image_builder.ts";

interface Progress {
  event: string;
  step: string;
  action: string;
  digest: string;
  current: number;
  total: number;
}

/** `copy --json FROM TO` in-process: its progress events, in order. */
async function copied(from: string, to: string): Promise<Progress[]> {
  const run = await callCli(["copy", "--json", from, to]);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines.at(-1).event, "copied");
  return lines.slice(0, -1) as Progress[];
}

/** Each digest's events, in order. */
function byDigest(events: Progress[]): Map<string, Progress[]> {
  const blobs = new Map<string, Progress[]>();
  for (const event of events) blobs.set(event.digest, [...blobs.get(event.digest) ?? [], event]);
  return blobs;
}

test("copy oci: docker-archive: docker-archive: oci: tells each layer's bytes as they move, then a layer held already as found", async () => {
  const source = join(tempDir(), "source");
  const sizes = [300_000, 2_000_000];
  const image = await buildImage(
    await ociLayoutStore(source),
    "1",
    sizes.map((size, i) => [{ name: `f${i}`, data: noise(size, 40 + i) }]),
    "oci",
  );
  const archive = join(tempDir(), "app.tar");

  // Out of the layout: its gzipped blobs, by their digests.
  const out = byDigest(await copied(`oci:${source}:1`, `docker-archive:${archive}:ends/app:1`));
  assert.deepEqual([...out.keys()], image.layers.map((layer) => layer.digest));
  for (const layer of image.layers) {
    const events = out.get(layer.digest)!;
    assert.deepEqual(events[0], {
      event: "progress",
      step: "pull",
      action: "pull",
      digest: layer.digest,
      current: 0,
      total: layer.size,
    });
    assert.equal(events.at(-1)!.current, layer.size);
    const currents = events.map((event) => event.current);
    assert.deepEqual(currents, [...currents].sort((a, b) => a - b), "bytes only grow");
  }

  // Into a layout: the archive keeps the layout's blobs as they were.
  const layout = join(tempDir(), "layout");
  const into = byDigest(await copied(`docker-archive:${archive}`, `oci:${layout}:1`));
  assert.deepEqual([...into.keys()], [...out.keys()]);
  for (const events of into.values()) {
    assert.ok(events.every((event) => event.action === "pull"));
    assert.equal(events.at(-1)!.current, events.at(-1)!.total);
  }

  // Again: the layout holds every layer, none is read.
  const again = await copied(`docker-archive:${archive}`, `oci:${layout}:2`);
  assert.deepEqual(
    again.map(({ action, digest, current, total }) => ({ action, digest, current, total })),
    image.layers.map(({ digest, size }) => ({
      action: "exists",
      digest,
      current: size,
      total: size,
    })),
  );
});
