// The one place the core looks at the runtime it runs on: which runtime it is, Deno's namespace
// and the Node built-in modules (node:crypto, node:zlib, node:http, …), all found at run time so
// that every file still loads in any runtime (Deno, Bun, Node, workerd, a browser).
// tests/runtime_globals_test.ts holds every other core file to this.

/** The runtimes the core tells apart; `other` is any else (workerd, a browser). */
export type RuntimeName = "deno" | "bun" | "node" | "other";

const globals = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  navigator?: { userAgent?: string };
  process?: { versions?: { node?: string }; getBuiltinModule?: (name: string) => unknown };
};

/**
 * The runtime this is. Deno, Bun and workerd have a `process` too, so Node is the one with
 * `process.versions.node` that does not name itself otherwise: `navigator.userAgent` is
 * `Node.js/…` from Node 21 and absent in 20.
 *
 * @returns Its name.
 */
export function runtimeName(): RuntimeName {
  if (globals.Deno !== undefined) return "deno";
  if (globals.Bun !== undefined) return "bun";
  const agent = globals.navigator?.userAgent;
  const node = typeof globals.process?.versions?.node === "string" &&
    (agent === undefined || agent.startsWith("Node.js/"));
  return node ? "node" : "other";
}

/**
 * Deno's namespace, typed as much as the caller needs, or `undefined` off Deno.
 *
 * @returns `Deno`, or `undefined`.
 */
export function denoNamespace<T>(): T | undefined {
  return globals.Deno as T | undefined;
}

/**
 * The built-in module `name` when the runtime has one whose `member` is a function, else `null`.
 *
 * @param name E.g. `node:crypto`.
 * @param member A function the caller needs, e.g. `createHash`.
 * @returns The module, or `null`.
 */
export function nodeBuiltin<T>(name: string, member: string): T | null {
  try {
    const module = globals.process?.getBuiltinModule?.(name) as
      | Record<string, unknown>
      | undefined;
    return typeof module?.[member] === "function" ? module as T : null;
  } catch {
    return null;
  }
}
