// A sequential in-memory model of V2MetadataService and of a key/value store, for the
// concurrency and property tests: what dockerd's Go code does when calls never overlap.
import type { V2Metadata } from "../mod.ts";

export const MAX_ENTRIES = 50;

function same(a: V2Metadata, b: V2Metadata): boolean {
  return a.digest === b.digest && a.sourceRepository === b.sourceRepository && a.hmac === b.hmac;
}

/** The list after `add(entry)`: equal entries dropped, appended, newest 50 kept. */
export function modelAdd(list: readonly V2Metadata[], entry: V2Metadata): V2Metadata[] {
  return [...list.filter((other) => !same(other, entry)), entry].slice(-MAX_ENTRIES);
}

/** The list after `remove(entry)`; `null` when the file is deleted (nothing left). */
export function modelRemove(list: readonly V2Metadata[], entry: V2Metadata): V2Metadata[] | null {
  const left = list.filter((other) => !same(other, entry));
  return left.length > 0 ? left : null;
}

/** The service's state: lists by DiffID and DiffIDs by digest. */
export class ServiceModel {
  readonly lists = new Map<string, V2Metadata[]>();
  readonly diffIDs = new Map<string, string>();

  add(diffID: string, entry: V2Metadata): void {
    this.lists.set(diffID, modelAdd(this.lists.get(diffID) ?? [], entry));
    this.diffIDs.set(entry.digest, diffID);
  }

  /** Returns the error code the real service must fail with, or null. */
  remove(entry: V2Metadata): string | null {
    const diffID = this.diffIDs.get(entry.digest);
    if (diffID === undefined) return "ENOENT";
    const list = this.lists.get(diffID);
    if (list === undefined) return "ENOENT";
    const left = modelRemove(list, entry);
    if (left === null) this.lists.delete(diffID);
    else this.lists.set(diffID, left);
    return null;
  }
}
