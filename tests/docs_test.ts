// What the documentation states that a program can check: the entry points are the same on
// JSR (deno.json) and npm (package.json), the Node version the docs name is the one npm is told,
// no page repeats a section, every name a page imports or the README's API table lists is
// exported from the entry point it names, every page the README links exists, and every dynamic
// import in the published files names its module, so `deno publish` can resolve it.
// @once
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const read = (path: string) => readFileSync(join(root, path), "utf8");
const denoJson = JSON.parse(read("deno.json"));
const packageJson = JSON.parse(read("package.json"));
const pages = ["README.md", ...readdirSync(join(root, "docs")).map((name) => `docs/${name}`)]
  .filter((path) => path.endsWith(".md"));

/** The names each entry point exports, types included, from `deno doc`. */
function exportedNames(): Map<string, Set<string>> {
  const entries = Object.entries(denoJson.exports as Record<string, string>);
  const json = execFileSync(
    join(root, "node_modules", ".bin", "deno"),
    ["doc", "--json", ...entries.map(([, file]) => file)],
    { cwd: root, encoding: "utf8", maxBuffer: 256 << 20 },
  );
  const nodes = JSON.parse(json).nodes as Record<string, { symbols: { name: string }[] }>;
  const names = new Map<string, Set<string>>();
  for (const [entry, file] of entries) {
    const node = nodes[new URL(file, `file://${root}`).href];
    assert.ok(node, `deno doc has no ${file}`);
    names.set(entry, new Set(node.symbols.map((symbol) => symbol.name)));
  }
  return names;
}

test("deno.json and package.json have the same entry points, on the same files", () => {
  const deno = denoJson.exports as Record<string, string>;
  const npm = packageJson.exports as Record<string, { bun: string; default: string }>;
  assert.deepEqual(Object.keys(npm).sort(), Object.keys(deno).sort());
  for (const [entry, file] of Object.entries(deno)) {
    assert.ok(existsSync(join(root, file)), `${entry}: ${file} is missing`);
    assert.equal(npm[entry]!.bun, file, `${entry}: Bun runs another file than Deno`);
    const built = file.replace(/^\.\//, "./dist/").replace(/\.ts$/, ".js");
    assert.equal(npm[entry]!.default, built, `${entry}: npm's file is not ${file} compiled`);
  }
});

test("every Node version the pages name is package.json's engines.node", () => {
  const engine = /^>=(\d+\.\d+)$/.exec(packageJson.engines?.node ?? "")?.[1];
  assert.ok(engine, `engines.node is ${packageJson.engines?.node}`);
  const named = pages.flatMap((page) =>
    [...read(page).matchAll(/Node(?:\.js)? ≥ (\d+\.\d+)/g)].map((m) => `${page}: ${m[1]}`)
  );
  assert.ok(named.length > 0);
  assert.deepEqual(named.filter((line) => !line.endsWith(`: ${engine}`)), []);
});

test("no page has the same section twice (a heading repeated under the same parent)", () => {
  const repeated: string[] = [];
  for (const page of pages) {
    const text = read(page).replace(/```[\s\S]*?```/g, ""); // `# comments` in code are no headings
    const seen = new Set<string>();
    const path: string[] = []; // the headings above, by level
    for (const [, hashes, title] of text.matchAll(/^(#{1,6}) (.+)$/gm)) {
      path.length = hashes!.length - 1;
      path.push(title!);
      const key = path.join(" > ");
      if (seen.has(key)) repeated.push(`${page}: ${key}`);
      seen.add(key);
    }
  }
  assert.deepEqual(repeated, []);
});

test("every page the README links to exists", () => {
  const links = [...read("README.md").matchAll(/\]\(((?:docs\/)?[\w./-]+\.md)\)/g)].map((m) =>
    m[1]!
  );
  assert.ok(links.length > 5);
  assert.deepEqual(links.filter((link) => !existsSync(join(root, link))), []);
});

test("every name the pages import, or the README's API table lists, is exported where they say", () => {
  const exported = exportedNames();
  const missing: string[] = [];
  const check = (where: string, entry: string, name: string) => {
    const names = exported.get(entry);
    if (names === undefined) missing.push(`${where}: no entry point "${entry}"`);
    else if (!names.has(name)) missing.push(`${where}: "${entry}" does not export ${name}`);
  };
  for (const page of pages) {
    const imports = read(page).matchAll(
      /import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"@distribution\/metadata(\/[\w-]+)?"/g,
    );
    for (const [, list, sub] of imports) {
      for (const item of list!.split(",").map((part) => part.trim()).filter(Boolean)) {
        check(
          page,
          sub === undefined ? "." : `.${sub}`,
          item.replace(/^type\s+/, "").split(/\s+as\s+/)[0]!,
        );
      }
    }
  }
  // The table's first column: `Name` or `Name.member(…)` or `name(…)`, each of the entry point
  // named after it in parentheses (`./kv`) before the next `;`, else of the core. `store.…` is an
  // instance.
  const table = read("README.md").split("## API overview")[1]!.split("\n## ")[0]!;
  for (const row of table.split("\n").filter((line) => line.startsWith("| `"))) {
    const cell = row.split("|")[1]!;
    for (const m of cell.matchAll(/`([A-Za-z]\w*)[^`]*`/g)) {
      if (m[1] === "store") continue;
      const entry = /\(`(\.\/[\w-]+)`\)/.exec(cell.slice(m.index).split(";")[0]!)?.[1] ?? ".";
      check(`README.md API table`, entry, m[1]!);
    }
  }
  assert.deepEqual(missing, []);
});

test("the published files import no module whose name deno publish cannot read", async () => {
  const published = [
    "mod.ts",
    "cli.ts",
    ...readdirSync(join(root, "src"), { recursive: true })
      .map((file) => `src/${file}`)
      .filter((file) => file.endsWith(".ts")),
  ];
  const unreadable: string[] = [];
  for (const file of published) {
    const { code } = await transform(read(file), { loader: "ts", legalComments: "none" });
    for (const m of code.matchAll(/\bimport\(\s*([^)]*)/g)) {
      if (!/^(["'])[^"'`$]+\1\s*$/.test(m[1]!)) unreadable.push(`${file}: import(${m[1]})`);
    }
  }
  assert.deepEqual(unreadable, []);
  assert.ok(published.includes("src/cli/store_location.ts"));
});
