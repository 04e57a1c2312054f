// Stands in for node:test inside workerd (esbuild aliases it here): test() records each
// test by name, so the Durable Object can run the shared conformance suite one test at a
// time when durable_object_store_test.ts asks.

type TestFn = () => unknown;

/** The recorded tests, by name. */
export const tests = new Map<string, TestFn>();

/** Records a test; a skipped one is not recorded. */
export function test(name: string, options: TestFn | { skip?: unknown }, fn?: TestFn): void {
  if (typeof options === "function") tests.set(name, options);
  else if (!options.skip && fn) tests.set(name, fn);
}

/** Nothing to clean up inside the worker. */
export function after(): void {}
