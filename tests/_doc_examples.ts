// Deno's side of run_all.mjs's documentation examples: `deno test tests/_doc_examples.ts -- DIR
// EXAMPLE...` runs each example _doc_examples.mjs wrote into DIR as a test of its own, all in
// this one worker. An example runs as its module's evaluation: one that throws fails its test.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [dir, ...examples] = Deno.args;
for (const example of examples) {
  Deno.test(example, async () => {
    await import(pathToFileURL(join(dir!, example)).href);
  });
}
