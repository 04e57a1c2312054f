// What the crash writer (_crash_writer.ts) writes, shared with crash_test.ts so the parent
// can tell a complete value from a torn one. Operation i writes slot i % SLOTS.
import type { V2Metadata } from "../mod.ts";

export const NAMESPACE = "crash";
export const SLOTS = 6;
/** The slot whose operations are V2MetadataService.add calls, not plain sets. */
export const LIST_SLOT = 5;
/** The slot written with an empty value every other time. */
export const EMPTY_SLOT = 4;
export const DIFF_ID = "sha256:" + "d".repeat(64);

/** The key of a plain slot (nested, as real keys are). */
export function slotKey(slot: number): string {
  return `sha256/slot-${slot}`;
}

function mix(i: number): number {
  let x = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  x ^= x >>> 13;
  return Math.imul(x, 0xc2b2ae35) >>> 0;
}

/** The bytes operation `i` writes: a header naming `i` and its size, then filler. */
export function valueOf(i: number): Uint8Array {
  if (i % SLOTS === EMPTY_SLOT && Math.floor(i / SLOTS) % 2 === 0) return new Uint8Array();
  const r = mix(i);
  // Mostly small values, one in seven big enough to take several write calls.
  const size = r % 7 === 0 ? 150_000 + r % 100_000 : r % 3_000;
  const header = new TextEncoder().encode(`op ${i} size ${size}\n`);
  const value = new Uint8Array(header.length + size);
  value.set(header);
  for (let j = 0; j < size; j++) value[header.length + j] = (i + j * 131) & 0xff;
  return value;
}

/** The entry operation `i` of the list slot adds. */
export function entryOf(i: number): V2Metadata {
  return {
    digest: "sha256:" + i.toString(16).padStart(64, "0"),
    sourceRepository: "registry.example.com/crash/test",
    hmac: "",
  };
}
