// Tasks that stand or fall together: the first failure stops the others and is the one thrown.

/** A limiter of concurrency (see `_limit.ts`): runs a task once a place is free. */
export type Slots = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Tasks run as they are added; the first failure (a task's, or one given to
 * {@linkcode TaskGroup.fail}) aborts `stop`, so the others end promptly and those not yet
 * started never start, and is what {@linkcode TaskGroup.settle} throws once all ended.
 */
export class TaskGroup {
  readonly #tasks: Promise<unknown>[] = [];
  readonly #stop: AbortController;
  #first: { error: unknown } | null = null;

  /** @param stop Aborted on the first failure; its signal is what the tasks heed. */
  constructor(stop: AbortController) {
    this.#stop = stop;
  }

  /**
   * Adds a running task.
   *
   * @param task The task.
   * @returns The task, whose failure has stopped the group by the time it is seen.
   */
  add<T>(task: Promise<T>): Promise<T> {
    const watched = task.catch((error) => {
      this.fail(error);
      throw error;
    });
    this.#tasks.push(watched.catch(() => {}));
    return watched;
  }

  /**
   * Runs `work` once `slots` gives it a place, and not at all when the group failed meanwhile.
   * Its failure stops the group before its place goes to the next task waiting, which so
   * never starts.
   *
   * @param slots The limiter of the concurrency.
   * @param work The work, given the group's stop signal.
   * @returns What the work returns.
   */
  inSlot<T>(slots: Slots, work: (stop: AbortSignal) => Promise<T>): Promise<T> {
    return slots(async () => {
      this.#stop.signal.throwIfAborted();
      try {
        return await work(this.#stop.signal);
      } catch (error) {
        this.fail(error);
        throw error;
      }
    });
  }

  /**
   * Stops the group for `error`, unless it already failed.
   *
   * @param error Why.
   */
  fail(error: unknown): void {
    this.#first ??= { error };
    this.#stop.abort();
  }

  /** Waits for every task; throws the first failure. */
  async settle(): Promise<void> {
    await Promise.all(this.#tasks);
    if (this.#first !== null) throw this.#first.error;
  }
}
