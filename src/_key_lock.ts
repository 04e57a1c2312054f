// Serialises read-modify-write cycles per key inside one process. The locks belong to the
// store object, so every service over the same store shares them.
import type { MetadataStore } from "./metadata_store.ts";

const locksByStore = new WeakMap<MetadataStore, Map<string, Promise<void>>>();

/** Runs `task` after every earlier task on the same store and key has settled. */
export function withKeyLock<T>(
  store: MetadataStore,
  key: string,
  task: () => Promise<T>,
): Promise<T> {
  let locks = locksByStore.get(store);
  if (!locks) locksByStore.set(store, locks = new Map());
  const previous = locks.get(key) ?? Promise.resolve();
  const result = previous.then(task);
  const done = result.then(() => {}, () => {});
  locks.set(key, done);
  done.then(() => {
    if (locks.get(key) === done) locks.delete(key);
  });
  return result;
}
