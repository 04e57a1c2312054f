// What each child of concurrency_test.ts writes: writer w owns DiffIDs w*10 … w*10+2 and
// adds entry n to DiffID n % 3, so processes share directories but never a DiffID.
import type { V2Metadata } from "../mod.ts";

export const DIFFIDS_PER_WRITER = 3;

/** The one DiffID every writer adds to in the shared-DiffID test. */
export const SHARED_DIFF_ID = "sha256:" + "5".repeat(64);

export function writerDiffID(writer: number, n: number): string {
  return "sha256:" + (writer * 10 + n % DIFFIDS_PER_WRITER).toString(16).padStart(64, "0");
}

export function writerEntry(writer: number, n: number): V2Metadata {
  return {
    digest: "sha256:" + (writer * 1_000_000 + n).toString(16).padStart(64, "f"),
    sourceRepository: `registry.example.com/writer-${writer}`,
    hmac: "",
  };
}
