/**
 * dockerd's Engine API over its unix socket: what an image is (its ID, layers and platform)
 * and where dockerd keeps its distribution metadata.
 *
 * @module
 */
import { readAtMost } from "../transport/limits.ts";
import { RegistryError } from "../errors.ts";
import type { Platform } from "../types.ts";
import { type UnixRequest, unixRequest } from "./_unix_http.ts";

/** The socket dockerd listens on by default. */
export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** The most bytes read of a JSON answer (an inspect of an image of 1000 layers is ~100 KiB). */
const MAX_JSON_BYTES = 4 << 20;

/** What link and the dockerd ends need of an image dockerd holds. */
export interface DaemonImage {
  /** The image ID, `sha256:<hex>`: with a graph driver, the digest of its configuration. */
  id: string;
  /** The layers' DiffIDs, base first (`RootFS.Layers`). */
  diffIDs: string[];
  /** The platform of its configuration. */
  platform: Platform;
}

/**
 * The socket path of a `DOCKER_HOST` value; only `unix://` is served here.
 *
 * @param host e.g. `unix:///run/user/1000/docker.sock`.
 * @returns The path.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { socketOf } from "./dockerd_api.ts";
 *
 * equal(socketOf("unix:///var/run/docker.sock"), "/var/run/docker.sock");
 * ```
 */
export function socketOf(host: string): string {
  if (!host.startsWith("unix://") || host.length === "unix://".length) {
    throw new RegistryError(
      "UNSUPPORTED",
      `Cannot reach dockerd at "${host}": only a unix:// socket is supported`,
      { url: host },
    );
  }
  return host.slice("unix://".length);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** dockerd's Engine API on one socket. */
export class DockerdApi {
  /** The socket's path. */
  readonly socket: string;
  readonly #signal: AbortSignal | undefined;

  /**
   * An API client; nothing is sent yet.
   *
   * @param host A `DOCKER_HOST` value (default {@linkcode DEFAULT_DOCKER_HOST}).
   * @param signal Aborts every request.
   */
  constructor(host: string = DEFAULT_DOCKER_HOST, signal?: AbortSignal) {
    this.socket = socketOf(host);
    this.#signal = signal;
  }

  /**
   * Sends a request; an answer of 400 or more fails with `DAEMON_ERROR` and dockerd's message.
   *
   * @param request The method, path, headers and body.
   * @returns The answer's body.
   */
  async request(request: Omit<UnixRequest, "signal">): Promise<ReadableStream<Uint8Array>> {
    const what = `${request.method} ${request.path}`;
    let answer;
    try {
      answer = await unixRequest(this.socket, { ...request, signal: this.#signal });
    } catch (cause) {
      // A failure of the body the caller gave (a blob that is not what it says) stays its own.
      if (cause instanceof RegistryError) throw cause;
      if (this.#signal?.aborted) {
        throw new RegistryError("ABORTED", `Cannot ${what} on dockerd: aborted`, { cause });
      }
      throw new RegistryError(
        "UNREACHABLE",
        `Cannot reach dockerd at "unix://${this.socket}": ${(cause as Error).message}`,
        { url: this.socket, cause },
      );
    }
    if (answer.status < 400) return answer.body;
    const body = await readAtMost(answer.body, MAX_JSON_BYTES, `dockerd's answer to ${what}`)
      .catch(() => new Uint8Array());
    let message = new TextDecoder().decode(body).trim();
    try {
      message = text(JSON.parse(message)?.message) || message;
    } catch {
      // Not JSON: the text as it is.
    }
    throw new RegistryError("DAEMON_ERROR", `dockerd refused ${what}: ${message}`, {
      status: answer.status,
      method: request.method,
      url: request.path,
    });
  }

  async #json(path: string): Promise<Record<string, unknown>> {
    const body = await this.request({ method: "GET", path });
    const bytes = await readAtMost(body, MAX_JSON_BYTES, `dockerd's answer to GET ${path}`);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw new RegistryError("MALFORMED", `Cannot parse dockerd's answer to GET ${path}`, {
        cause,
      });
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new RegistryError("MALFORMED", `Cannot use dockerd's answer to GET ${path}: no object`);
    }
    return value as Record<string, unknown>;
  }

  /**
   * An image dockerd holds (`GET /images/{name}/json`).
   *
   * @param name A reference, an ID or a short ID, as `docker image inspect` takes it.
   * @returns Its ID, DiffIDs and platform.
   */
  async image(name: string): Promise<DaemonImage> {
    const json = await this.#json(`/images/${encodeURIComponent(name)}/json`);
    const rootFS = json.RootFS as { Layers?: unknown } | undefined;
    const layers = rootFS?.Layers ?? [];
    const id = text(json.Id);
    if (!/^sha256:[a-f0-9]{64}$/.test(id) || !Array.isArray(layers)) {
      throw new RegistryError("MALFORMED", `Cannot use dockerd's image "${name}": no ID or layers`);
    }
    const platform: Platform = { os: text(json.Os), architecture: text(json.Architecture) };
    if (text(json.Variant) !== "") platform.variant = text(json.Variant);
    return { id, diffIDs: layers.map(text), platform };
  }

  /**
   * Where dockerd keeps its images (`GET /info`): `<DockerRootDir>/image/<Driver>` (as
   * dockerd sees it), which holds the image configurations (`imagedb`), the layers' sizes
   * (`layerdb`) and the distribution metadata (`distribution`), unless it uses the
   * containerd image store, which keeps none of them.
   *
   * @returns The directory, or `null` on the containerd image store.
   */
  async imageStore(): Promise<string | null> {
    const json = await this.#json("/info");
    const status = Array.isArray(json.DriverStatus) ? json.DriverStatus : [];
    const snapshotter = status.some((pair) =>
      Array.isArray(pair) && pair[0] === "driver-type" && pair[1] === "io.containerd.snapshotter.v1"
    );
    const root = text(json.DockerRootDir);
    const driver = text(json.Driver);
    if (
      !snapshotter && (!root.startsWith("/") || !/^[\w.-]+$/.test(driver) || /^\.+$/.test(driver))
    ) {
      throw new RegistryError(
        "MALFORMED",
        `Cannot find dockerd's store: /info gives root "${root}" and driver "${driver}"`,
      );
    }
    return snapshotter ? null : `${root.replace(/\/+$/, "")}/image/${driver}`;
  }
}
