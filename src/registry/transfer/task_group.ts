// Tasks that stand or fall together: the first failure stops the others and is the one thrown.

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
