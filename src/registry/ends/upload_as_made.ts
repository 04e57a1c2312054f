/**
 * An upload fed while its blob is still being made (a layer gzipped as dockerd's save streams
 * by), so the blob is in the registry when the last byte is made instead of being read back
 * and sent afterwards. The bytes go out in one `PATCH` of unknown length as they pass, as
 * `docker push` sends a layer, and the session is closed with the digest once the maker knows
 * it. Every byte that passes is sent, in order, so the digest of what passed is the digest of
 * what was sent; the bytes wait while the registry is slower than their maker.
 *
 * It is one attempt and no more: when the request fails (a registry that refuses a chunked
 * body, a cut connection), the bytes go on passing untouched and
 * {@linkcode UploadAsMade.commit} says so; the caller then uploads the blob from its own copy,
 * retried as any upload. Its digest is unknown until the end, so no upload claim can be taken
 * for it: it is offered only when the metadata store has no claims.
 *
 * @module
 */
import { isRegistryError } from "../errors.ts";
import { HttpBlobWriter } from "../repository/blob_writer.ts";
import type { Descriptor } from "../types.ts";
import type { RegistryDestination } from "./registry_destination.ts";

/**
 * How far the bytes may run ahead of the request before they wait: a maker and a registry that
 * share the cores each go on through the other's short pauses (out of dockerd, 205 MiB: 0.84× of
 * skopeo's time against 0.90× with one chunk ahead, median of 3; 1.02× sent afterwards).
 */
const AHEAD = 4 << 20;

/** An upload session fed by the bytes passing through {@linkcode UploadAsMade.feed}. */
export class UploadAsMade {
  readonly #dest: RegistryDestination;
  #session: Promise<HttpBlobWriter> | null = null;
  /** The `PATCH` under way, settled once its answer came or it failed. */
  #request: Promise<void> | null = null;
  #body: ReadableStreamDefaultController<Uint8Array> | null = null;
  /** Wakes the bytes waiting for the request to take more. */
  #wake: (() => void) | null = null;
  #failed = false;
  /** The session's end, once decided: committed, or being cancelled (only once). */
  #ended: Promise<void> | null = null;

  /**
   * @param dest The registry repository the blob goes to.
   */
  constructor(dest: RegistryDestination) {
    this.#dest = dest;
  }

  /**
   * An upload as made for `dest`, or `null` when its metadata store offers upload claims
   * (an upload must be claimed by its digest before a byte is sent).
   */
  static offeredBy(dest: RegistryDestination): UploadAsMade | null {
    return dest.claims === undefined ? new UploadAsMade(dest) : null;
  }

  /**
   * `bytes` as they are, each sent on its way once the request takes it (the same chunk goes
   * on and into the request: both only read it).
   */
  feed(bytes: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    return bytes.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: async (chunk, controller) => {
          controller.enqueue(chunk);
          await this.#send(chunk);
        },
        flush: () => {
          if (!this.#failed) this.#body?.close();
        },
      }),
    );
  }

  async #send(chunk: Uint8Array): Promise<void> {
    if (this.#failed || chunk.length === 0) return;
    if (this.#body === null) this.#start();
    this.#body!.enqueue(chunk);
    while (!this.#failed && this.#body!.desiredSize! <= 0) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  #start(): void {
    const wake = () => {
      this.#wake?.();
      this.#wake = null;
    };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => void (this.#body = controller),
      pull: wake,
      cancel: () => {
        this.#failed = true;
        wake();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: AHEAD }));
    this.#session = this.#open();
    this.#request = this.#session.then((session) => session.writeStream(body)).catch(() => {
      this.#failed = true;
      wake();
    });
  }

  async #open(): Promise<HttpBlobWriter> {
    const created = await this.#dest.repo.blobs().create();
    // Asked for no mount, a registry answering 201 gives no session to fill.
    if (created.kind !== "upload" || !(created.writer instanceof HttpBlobWriter)) {
      throw new Error("no upload session to stream into");
    }
    return created.writer;
  }

  /**
   * Closes the session under `blob`, the digest and size of every byte that passed.
   *
   * @param blob What the bytes made.
   * @param signal Aborted: the push was stopped, and its reason is thrown.
   * @returns Whether the registry has the blob now; `false` after a failed request or close
   * (the session cancelled): the caller uploads it again.
   */
  async commit(blob: Descriptor, signal: AbortSignal): Promise<boolean> {
    await this.#request;
    signal.throwIfAborted();
    if (!this.#failed && this.#session !== null) {
      try {
        const session = await this.#session;
        if (session.size === blob.size) {
          await session.commit(blob.digest);
          this.#ended = Promise.resolve();
          return true;
        }
      } catch (error) {
        if (signal.aborted || isRegistryError(error, "ABORTED")) throw error;
      }
    }
    await this.cancel();
    return false;
  }

  /**
   * Abandons the upload: the request ended and the session cancelled (`DELETE`), once, unless
   * it was committed; failures are ignored.
   */
  cancel(): Promise<void> {
    return this.#ended ??= this.#abandon();
  }

  async #abandon(): Promise<void> {
    if (!this.#failed) this.#body?.error(new Error("the upload was abandoned"));
    this.#failed = true;
    this.#wake?.();
    await this.#request;
    const session = await this.#session?.catch(() => null);
    await session?.cancel();
  }
}
