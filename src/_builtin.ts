// The runtime's Node built-in modules (node:crypto, node:zlib, node:http, …), found at run time
// so that the files using them still load in any runtime: Deno, Bun, Node and workerd with
// nodejs_compat have them; browsers and plain workers do not.

/**
 * The built-in module `name` when the runtime has one whose `member` is a function, else `null`.
 *
 * @param name E.g. `node:crypto`.
 * @param member A function the caller needs, e.g. `createHash`.
 * @returns The module, or `null`.
 */
export function nodeBuiltin<T>(name: string, member: string): T | null {
  try {
    const process = (globalThis as {
      process?: { getBuiltinModule?: (name: string) => unknown };
    }).process;
    const module = process?.getBuiltinModule?.(name) as Record<string, unknown> | undefined;
    return typeof module?.[member] === "function" ? module as T : null;
  } catch {
    return null;
  }
}
