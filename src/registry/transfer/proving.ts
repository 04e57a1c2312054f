// The DiffIDs of the layers a destination takes as they pass, for those the source could not
// prove (a registry's or a layout's blobs), and what each layer then comes to: the one rule
// dockerd, archives and layouts share for what a taken layer proves and records.
import type { V2MetadataService } from "../../v2_metadata_service.ts";
import { type DiffIDSink, diffIDSink, feeding } from "../_diff_id.ts";
import type { PulledLayer } from "../types.ts";
import { proven, recordLayer } from "./proven.ts";
import type { SourceLayer } from "./source.ts";

/** What became of one layer taken into dockerd, an archive or a layout. */
export interface TakenLayerResult extends Omit<PulledLayer, "status"> {
  /**
   * As {@linkcode PulledLayer}'s (`recorded`: its bytes proved its DiffID and the pull from the
   * source repository was recorded), or `proven`: its bytes proved its DiffID, and as the
   * source is no registry repository (dockerd, an archive, a layout) nothing was recorded.
   */
  status: PulledLayer["status"] | "proven";
}

/** Where a registry's layers are recorded as pulled: the metadata, the source's credentials' key. */
export interface Records {
  /** The metadata service. */
  service: V2MetadataService;
  /** The key of the source registry's credentials, which the entries are tagged with. */
  hmacKey: Uint8Array | null;
}

/** The layers taken, by blob digest, each with the DiffID its bytes gave as they passed. */
export class Proving {
  readonly #sinks = new Map<string, DiffIDSink | null>();

  /**
   * The bytes of `layer`, blob `digest`, as they are taken: fed to a DiffID when unproven.
   *
   * @param digest The blob's digest.
   * @param layer The source's layer.
   * @param stop Stops the reading.
   * @returns The bytes.
   */
  async open(
    digest: string,
    layer: SourceLayer,
    stop: AbortSignal,
  ): Promise<ReadableStream<Uint8Array>> {
    const sink = layer.unproven ? diffIDSink() : null;
    this.#sinks.set(digest, sink);
    const bytes = await layer.open();
    return sink === null ? bytes : feeding(bytes, sink, stop);
  }

  /** Stops every DiffID (the transfer failed). */
  abort(): void {
    for (const sink of this.#sinks.values()) sink?.abort();
  }

  /**
   * Each layer's verdict once all passed, recorded as a pull from `origin` when its bytes proved
   * it and the image came from a registry repository.
   *
   * @param layers The image's layers in order: blob digest and claimed DiffID.
   * @param origin The source repository's full name, if any.
   * @param records Where a registry's layers are recorded (none: nowhere).
   * @returns Each layer's outcome, in order.
   */
  async settle(
    layers: readonly { digest: string; diffID: string }[],
    origin: string | undefined,
    records: Records | undefined,
  ): Promise<TakenLayerResult[]> {
    const actual = new Map<string, string | null>();
    for (const [digest, sink] of this.#sinks) {
      if (sink !== null) actual.set(digest, await sink.close());
    }
    const results: TakenLayerResult[] = [];
    for (const { digest, diffID } of layers) {
      if (!actual.has(digest)) {
        results.push({ digest, diffID, status: "proven" });
        continue;
      }
      const verdict = proven(diffID, actual.get(digest)!);
      if (verdict.status !== "recorded") results.push({ digest, diffID, ...verdict });
      else if (origin === undefined || records === undefined) {
        results.push({ digest, diffID, status: "proven" });
      } else {
        await recordLayer(records.service, records.hmacKey, diffID, digest, origin);
        results.push({ digest, diffID, status: "recorded" });
      }
    }
    return results;
  }
}
