// A child process of concurrency_test.ts: adds COUNT entries (writer WRITER of the store at
// ROOT), several calls at a time, then prints "done". MODE "own" adds to the writer's own
// DiffIDs, "shared" to the one DiffID all writers share, "locked" as "shared" through a
// store opened with `lock: true`.
import process from "node:process";
import { FSMetadataStore, V2MetadataService } from "../mod.ts";
import { SHARED_DIFF_ID, writerDiffID, writerEntry } from "./_concurrent_plan.ts";

const [root, writer, count, mode] = process.argv.slice(-4) as [string, string, string, string];
const service = new V2MetadataService(
  await FSMetadataStore.open(root, { lock: mode === "locked" }),
);
const ops = Array.from({ length: Number(count) }, (_, n) => n);
for (let i = 0; i < ops.length; i += 8) {
  await Promise.all(
    ops.slice(i, i + 8).map((n) =>
      service.add(
        mode === "own" ? writerDiffID(Number(writer), n) : SHARED_DIFF_ID,
        writerEntry(Number(writer), n),
      )
    ),
  );
}
console.log("done");
