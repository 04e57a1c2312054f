// Deno's side of run_all.mjs's quick tier and named files, as _node_tests.mjs is Node's: imports
// every test file named after `--` (`deno test tests/_deno_tests.ts -- FILE...`), so their tests
// run in this one worker. `deno test FILE...` starts a worker per file, each loading the library
// again: the quick tier's files took 41 CPU-seconds that way here, 28 in one worker.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

for (const file of Deno.args) await import(pathToFileURL(resolve(file)).href);
