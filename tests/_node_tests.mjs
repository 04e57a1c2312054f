// Node's side of run_all.mjs: imports every test file named on the command line, so node:test
// runs them all in this one process (`node --import tsx --test-reporter=tap _node_tests.mjs
// FILE...`). `node --test` starts a child process per file, each loading tsx again: about one
// CPU-second a file on this machine. Top-level before/after hooks then run once around all of
// the files' tests, as they do around one file's.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

for (const file of process.argv.slice(2)) await import(pathToFileURL(resolve(file)).href);
