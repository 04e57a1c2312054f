// The documentation examples, as `deno test --doc` finds them: every ```ts block (not
// `ts ignore`) in a JSDoc comment of the given modules, each written to a module of its own so
// that `deno check` type-checks them and tests/_doc_examples.ts runs them all in one Deno worker.
// `deno test --doc` starts a worker per example, about 0.35 CPU-seconds each on this machine.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** The .ts files `paths` (files and directories, relative to `root`) name, sorted. */
function modules(root, paths) {
  return paths.flatMap((path) =>
    statSync(join(root, path)).isDirectory()
      ? readdirSync(join(root, path), { recursive: true })
        .filter((file) => String(file).endsWith(".ts"))
        .map((file) => join(path, String(file)))
      : [path]
  ).sort();
}

/** Each runnable example of `text`: its code and the lines of its opening and closing fences. */
function examplesOf(text) {
  const found = [];
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const firstLine = text.slice(0, comment.index).split("\n").length;
    const lines = comment[0].split("\n").map((line) => line.replace(/^\s*(\/\*\*|\*\/|\*) ?/, ""));
    for (let open = 0; open < lines.length; open++) {
      const info = lines[open].match(/^```(.*)$/)?.[1].trim().split(/\s+/);
      if (info === undefined) continue;
      let close = open + 1;
      while (close < lines.length && !/^```\s*$/.test(lines[close])) close++;
      if (info[0] === "ts" && !info.includes("ignore")) {
        const code = lines.slice(open + 1, close).join("\n");
        found.push({ code, from: firstLine + open, to: firstLine + close });
      }
      open = close;
    }
  }
  return found;
}

/**
 * Writes the examples of the modules `paths` names into `dir`, one module each, named after
 * where it stands (`src/fs_store.ts$128-136.ts`); returns those names. A relative import
 * becomes the file URL it names from the example's own module, where Deno resolves it.
 */
export function writeDocExamples(root, paths, dir) {
  const written = [];
  for (const path of modules(root, paths)) {
    const source = resolve(root, path);
    for (const { code, from, to } of examplesOf(readFileSync(source, "utf8"))) {
      const name = `${path}$${from}-${to}.ts`;
      const absolute = code.replace(
        /(\bfrom\s*)"(\.\.?\/[^"]+)"/g,
        (_, keyword, specifier) =>
          `${keyword}"${pathToFileURL(resolve(dirname(source), specifier)).href}"`,
      );
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), `${absolute}\n`);
      written.push(name);
    }
  }
  return written;
}
