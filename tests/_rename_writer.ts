// Run by fs_store_test.ts: replaces `<path>` by rename, as a store's writer does, alternating
// a short and a long value, until `<path>.stop` exists. Prints "started" once it has begun.
import { existsSync, renameSync, writeFileSync } from "node:fs";
import process from "node:process";

const [path, short, long] = process.argv.slice(2) as [string, string, string];
console.log("started");
for (let i = 0; !existsSync(`${path}.stop`); i++) {
  writeFileSync(`${path}.next`, i % 2 === 0 ? short : long);
  renameSync(`${path}.next`, path);
}
