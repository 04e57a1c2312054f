/**
 * Platforms as docker and skopeo name them (`os/arch[/variant]`), and the platform of the
 * machine running this code, which they pull from an index by default.
 *
 * @module
 */
import { nodeBuiltin } from "../_runtime.ts";
import { RegistryError } from "./errors.ts";
import type { Platform } from "./types.ts";

/** Node's `process.arch` → Go's GOARCH, as image indexes name architectures. */
const GO_ARCH: Record<string, string> = {
  x64: "amd64",
  ia32: "386",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips64el: "mips64le",
};

/**
 * Reads `os/arch[/variant]`, as `docker pull --platform` takes it; `arm64/v8` is `arm64` (the
 * variant every arm64 image has, so an index may leave it out).
 *
 * @param text e.g. `linux/arm64`, `linux/arm/v7`.
 * @returns The platform; anything else is `NAME_INVALID`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { parsePlatform } from "./platform.ts";
 *
 * deepEqual(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v7" });
 * ```
 */
export function parsePlatform(text: string): Platform {
  const parts = text.toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new RegistryError(
      "NAME_INVALID",
      `Cannot use platform "${text}": expected os/arch or os/arch/variant`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  if (variant === undefined || (architecture === "arm64" && variant === "v8")) {
    return { os, architecture };
  }
  return { os, architecture, variant };
}

/**
 * The platform of this machine as docker and skopeo pick it from an index: `linux` (Docker
 * Desktop and Podman on macOS run Linux images too) or `windows`, and the CPU's architecture
 * (`arm` as `arm/v7`); `linux/amd64` where the runtime cannot tell.
 *
 * @returns The platform.
 *
 * @example
 * ```ts
 * import { hostPlatform } from "./platform.ts";
 *
 * console.log(hostPlatform()); // e.g. { os: "linux", architecture: "amd64" }
 * ```
 */
export function hostPlatform(): Platform {
  const host = nodeBuiltin<{ arch: string; platform: string }>("node:process", "cwd");
  const architecture = GO_ARCH[host?.arch ?? "x64"] ?? host!.arch;
  const os = host?.platform === "win32" ? "windows" : "linux";
  return architecture === "arm" ? { os, architecture, variant: "v7" } : { os, architecture };
}
