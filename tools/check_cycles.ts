/**
 * Fails when the library's modules import each other in a cycle: `deno task check` runs it.
 * A cycle hides which module is the more basic one, and makes the order modules evaluate in
 * depend on which one a program imports first.
 *
 * Usage: `deno run --allow-read --allow-write --allow-run tools/check_cycles.ts [dir]`, where
 * `dir` (default: the working directory) holds `mod.ts`, `cli.ts` and `src/`. Every `.ts`
 * file of these is a root of the module graph `deno info --json` reports; type-only imports
 * count as much as value imports. Prints each cycle found and exits with 1, else exits with 0.
 *
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** One module of `deno info --json`: its URL and what it imports (code and types). */
interface GraphModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** The `.ts` files `dir` holds: `mod.ts`, `cli.ts` and everything under `src/`. */
function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (path: string): void => {
    for (const entry of Deno.readDirSync(path)) {
      const child = join(path, entry.name);
      if (entry.isDirectory) walk(child);
      else if (entry.isFile && entry.name.endsWith(".ts")) files.push(child);
    }
  };
  for (const name of ["mod.ts", "cli.ts"]) {
    if (exists(join(dir, name))) files.push(join(dir, name));
  }
  walk(join(dir, "src"));
  return files;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Each local module's local imports, from one `deno info --json` over all of `files`. */
function importGraph(files: string[]): Map<string, string[]> {
  // deno info takes one root: a temp module that imports every file stands for all.
  const root = Deno.makeTempFileSync({ suffix: ".ts" });
  try {
    Deno.writeTextFileSync(
      root,
      files.map((file) => `import ${JSON.stringify(pathToFileURL(file).href)};\n`).join(""),
    );
    const deno = Deno.execPath();
    const output = new Deno.Command(deno, { args: ["info", "--json", root], stderr: "inherit" })
      .outputSync();
    if (!output.success) throw new Error(`deno info failed with ${output.code}`);
    const { modules } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      modules: GraphModule[];
    };
    const rootUrl = pathToFileURL(root).href;
    const graph = new Map<string, string[]>();
    for (const module of modules) {
      if (!module.specifier.startsWith("file:") || module.specifier === rootUrl) continue;
      const imports = (module.dependencies ?? [])
        .flatMap((dependency) => [dependency.code?.specifier, dependency.type?.specifier])
        .filter((specifier): specifier is string => specifier?.startsWith("file:") ?? false);
      graph.set(module.specifier, [...new Set(imports)]);
    }
    return graph;
  } finally {
    Deno.removeSync(root);
  }
}

/**
 * The strongly connected components of `graph` with more than one module, or one module that
 * imports itself: each is a set of modules that import each other (Tarjan's algorithm).
 */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, index.size);
    lowLink.set(module, index.get(module)!);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!index.has(next)) {
        visit(next);
        lowLink.set(module, Math.min(lowLink.get(module)!, lowLink.get(next)!));
      } else if (onStack.has(next)) {
        lowLink.set(module, Math.min(lowLink.get(module)!, index.get(next)!));
      }
    }
    if (lowLink.get(module) !== index.get(module)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== module);
    if (component.length > 1 || graph.get(module)?.includes(module)) {
      cycles.push(component.sort());
    }
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return cycles;
}

if (import.meta.main) {
  const dir = Deno.realPathSync(Deno.args[0] ?? ".");
  const graph = importGraph(sourceFiles(dir));
  const cycles = findCycles(graph);
  const name = (url: string) => relative(dir, fileURLToPath(url));
  for (const cycle of cycles) {
    console.error(`Import cycle: ${cycle.map(name).join(" ↔ ")}`);
    for (const module of cycle) {
      const inCycle = graph.get(module)!.filter((next) => cycle.includes(next));
      console.error(`  ${name(module)} imports ${inCycle.map(name).join(", ")}`);
    }
  }
  if (cycles.length > 0) Deno.exit(1);
  console.log(`No import cycles among ${graph.size} modules`);
}
