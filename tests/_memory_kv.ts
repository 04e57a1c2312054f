// An in-memory stand-in for Deno.Kv with its limits (64 KiB values, 10 keys per getMany,
// versionstamp checks), so DenoKvMetadataStore runs on Bun, Node and workerd too. It can be
// told to answer "database is locked" like the SQLite backend under contention.
import type { Kv, KvAtomicOperation, KvEntry, KvKey } from "../src/kv_store.ts";

function encodeKey(key: KvKey): string {
  return JSON.stringify(
    key.map((part) =>
      part instanceof Uint8Array ? ["bytes", [...part]] : [typeof part, String(part)]
    ),
  );
}

/** A value as Deno KV would store it: a copy, and at most 64 KiB. */
function stored(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    if (value.length > 65_536) throw new TypeError("Value too large (max 65536 bytes)");
    return value.slice();
  }
  return structuredClone(value);
}

export class MemoryKv implements Kv {
  readonly entries = new Map<string, { key: KvKey; value: unknown; versionstamp: string }>();
  /** How many of the next calls fail with "database is locked". */
  lockedCalls = 0;
  /** How many calls failed so. */
  lockedAnswers = 0;
  #version = 0;

  #maybeLocked(): void {
    if (this.lockedCalls > 0) {
      this.lockedCalls--;
      this.lockedAnswers++;
      throw new TypeError("database is locked");
    }
  }

  #read(key: KvKey): KvEntry {
    const entry = this.entries.get(encodeKey(key));
    return entry
      ? { value: structuredClone(entry.value), versionstamp: entry.versionstamp }
      : { value: null, versionstamp: null };
  }

  get(key: KvKey): Promise<KvEntry> {
    return Promise.resolve().then(() => {
      this.#maybeLocked();
      return this.#read(key);
    });
  }

  getMany(keys: KvKey[]): Promise<KvEntry[]> {
    return Promise.resolve().then(() => {
      this.#maybeLocked();
      if (keys.length > 10) throw new TypeError("Too many ranges (max 10)");
      return keys.map((key) => this.#read(key));
    });
  }

  async *list(selector: { prefix: KvKey }): AsyncIterable<KvEntry & { key: KvKey }> {
    this.#maybeLocked();
    const prefix = selector.prefix.length === 0
      ? "["
      : encodeKey(selector.prefix).slice(0, -1) + ",";
    const matches = [...this.entries].filter(([encoded]) => encoded.startsWith(prefix));
    for (const [, entry] of matches.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
      yield { key: entry.key, ...this.#read(entry.key) };
    }
  }

  atomic(): KvAtomicOperation {
    const checks: { key: KvKey; versionstamp: string | null }[] = [];
    const mutations: { key: KvKey; value: unknown; remove: boolean }[] = [];
    const operation = {
      check: (...more: { key: KvKey; versionstamp: string | null }[]) => {
        checks.push(...more);
        return operation;
      },
      set: (key: KvKey, value: unknown) => {
        mutations.push({ key, value: stored(value), remove: false });
        return operation;
      },
      delete: (key: KvKey) => {
        mutations.push({ key, value: null, remove: true });
        return operation;
      },
      commit: () =>
        Promise.resolve().then(() => {
          this.#maybeLocked();
          for (const check of checks) {
            if (this.#read(check.key).versionstamp !== check.versionstamp) return { ok: false };
          }
          const versionstamp = (++this.#version).toString(16).padStart(20, "0");
          for (const { key, value, remove } of mutations) {
            if (remove) this.entries.delete(encodeKey(key));
            else this.entries.set(encodeKey(key), { key, value, versionstamp });
          }
          return { ok: true };
        }),
    };
    return operation;
  }
}
