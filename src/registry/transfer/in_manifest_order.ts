// The layers of one image moved at once and settled in manifest order: push, pull and copy
// run their layers through this, so the metadata sees the same calls in the same order as a
// transfer of one layer at a time, and the first failure stops every other layer.
import { type Slots, TaskGroup } from "./task_group.ts";

/** Runs a layer's work in a place of the concurrency limit ({@linkcode TaskGroup.inSlot}). */
export type InSlot = <D>(work: (stop: AbortSignal) => Promise<D>) => Promise<D>;

/**
 * Starts every item at once, then settles their outcomes in order, each once it and every item
 * before it are done. An item's work runs through `inSlot`: once `slots` gives it a place, and
 * not at all when another failed meanwhile. The first failure, a work's or a settling's, aborts
 * `stop` before the failed work's place goes to the next (so the other works end promptly and
 * those waiting never start) and is thrown once every item ended.
 *
 * @param items The layers, in manifest order.
 * @param slots The limiter of the transfer's concurrency.
 * @param start Starts one item: its work through `inSlot`, or an outcome with no work (a layer
 * skipped, a transfer of the same blob already under way).
 * @param settle What is done with a finished item's outcome, in order (e.g. record it).
 * @param stop Aborted on the first failure (default: a controller of this run's own).
 * @returns Each item's settled outcome, in order.
 */
export async function inManifestOrder<T, D, R>(
  items: readonly T[],
  slots: Slots,
  start: (item: T, inSlot: InSlot) => Promise<D>,
  settle: (item: T, done: D) => R | Promise<R>,
  stop: AbortController = new AbortController(),
): Promise<R[]> {
  const group = new TaskGroup(stop);
  const inSlot: InSlot = (work) => group.inSlot(slots, work);
  const tasks = items.map((item) => group.add(start(item, inSlot)));
  const settled: R[] = [];
  try {
    for (const [i, task] of tasks.entries()) settled.push(await settle(items[i]!, await task));
  } catch (error) {
    group.fail(error);
  }
  await group.settle();
  return settled;
}
