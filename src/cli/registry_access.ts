// How the CLI reaches a registry, as dockerd does: the certificates of
// /etc/docker/certs.d/<host[:port]>/ (`*.crt` CAs, `*.cert`/`*.key` client pairs), and for
// insecure registries (loopback ones, daemon.json's `insecure-registries`) https without
// verification first, then plain http; skopeo's `--cert-dir` and `--tls-verify` per side.
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";
import { isRegistryError, type RegistryError } from "../registry/errors.ts";
import { getRepositories } from "../registry/repositories.ts";
import type { TlsOptions } from "../registry/transport/default_transport.ts";

/** Where docker keeps per-registry certificates (`registry.CertsDir` for a rootful dockerd). */
const DOCKER_CERTS_DIR = "/etc/docker/certs.d";

/**
 * The certs.d directory: `DISTRIBUTION_METADATA_CERTS_D` when set (tests, a rootless docker's
 * `~/.config/docker/certs.d`), else docker's.
 *
 * @param env Environment variables.
 * @returns The directory.
 */
export function certsBase(env: (name: string) => string | undefined): string {
  return env("DISTRIBUTION_METADATA_CERTS_D") || DOCKER_CERTS_DIR;
}

/**
 * daemon.json's `insecure-registries` (none when it is missing or unreadable, as for a dockerd
 * without it).
 *
 * @param readTextFile Reads a file.
 * @returns The entries.
 */
export async function insecureRegistries(
  readTextFile: (path: string) => Promise<string>,
): Promise<string[]> {
  try {
    const daemon = JSON.parse(await readTextFile("/etc/docker/daemon.json"));
    const list = daemon?.["insecure-registries"];
    return Array.isArray(list) ? list.filter((entry) => typeof entry === "string") : [];
  } catch {
    return [];
  }
}

/**
 * How long the https probe of an insecure registry waits for a byte: Go's TLS handshake
 * timeout is 10 s; a server that takes the hello in silence (no http server does) costs this.
 */
const PROBE_IDLE_TIMEOUT = 5_000;

/** How one registry is reached: http or https, and its TLS settings. */
export interface RegistryAccess {
  plainHttp: boolean;
  tls?: TlsOptions;
}

/** What the command line and the machine say about one registry. */
export interface AccessOptions {
  /** `--plain-http` (`true`) or `--no-plain-http` (`false`). */
  plainHttp: boolean | undefined;
  /** `--*-tls-verify`: `false` treats the registry as insecure, `true` never does. */
  tlsVerify: boolean | undefined;
  /** `--*-cert-dir`: certificates from here instead of the certs.d directory. */
  certDir: string | undefined;
  /** The certs.d directory (`/etc/docker/certs.d`). */
  certsBase: string;
  /** daemon.json's `insecure-registries`: `host[:port]` or IPv4 CIDRs. */
  insecureRegistries: readonly string[];
}

/** Hosts a registry runs on without TLS by default: this machine (dockerd's 127.0.0.0/8). */
function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, "");
  return name === "localhost" || name === "[::1]" || /^127(?:\.\d{1,3}){3}$/.test(name);
}

function ipv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && +part < 256)) {
    return null;
  }
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

/** Whether daemon.json lists the host: by `host[:port]`, or its IPv4 address by CIDR. */
export function isInsecureRegistry(host: string, insecure: readonly string[]): boolean {
  const address = ipv4(host.replace(/:\d+$/, ""));
  return insecure.some((entry) => {
    if (entry === host) return true;
    const [network, bits] = entry.split("/");
    if (bits === undefined || address === null || !/^\d{1,2}$/.test(bits) || +bits > 32) {
      return false;
    }
    const base = ipv4(network!);
    const size = 2 ** (32 - Number(bits));
    return base !== null && Math.floor(address / size) === Math.floor(base / size);
  });
}

/**
 * The certificates of a directory as docker reads certs.d: every `*.crt` a CA, every `*.cert`
 * a client certificate whose key is the `*.key` of the same name (docker allows one pair here).
 * A missing directory holds none.
 */
async function readCertificates(
  fs: FileSystem,
  readTextFile: (path: string) => Promise<string>,
  dir: string,
): Promise<TlsOptions> {
  let names: string[];
  try {
    names = await fs.readDir(dir);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return {};
    throw error;
  }
  const tls: TlsOptions = {};
  const cas: string[] = [];
  for (const name of names.sort()) {
    if (name.endsWith(".crt")) cas.push(await readTextFile(`${dir}/${name}`));
    if (!name.endsWith(".cert")) continue;
    const keyName = `${name.slice(0, -".cert".length)}.key`;
    if (!names.includes(keyName)) {
      throw new MetadataError(
        "ENOENT",
        `Cannot use client certificate "${dir}/${name}": missing key "${dir}/${keyName}"`,
        { path: `${dir}/${keyName}` },
      );
    }
    tls.certificate = await readTextFile(`${dir}/${name}`);
    tls.key = await readTextFile(`${dir}/${keyName}`);
  }
  if (cas.length > 0) tls.caCertificates = cas;
  return tls;
}

/**
 * How to reach `host`, as dockerd would: its certs.d certificates (or `--cert-dir`'s); for an
 * insecure registry (loopback, daemon.json, `--tls-verify=false`) https without verification,
 * and when no TLS answers there, plain http (one ping decides).
 *
 * @param host The registry host, e.g. `127.0.0.1:5000`.
 * @param probe A reference on it, pinged to choose between https and http.
 * @param options The command line's and the machine's settings.
 * @param files How to read certificate files.
 * @returns The way in.
 */
export async function registryAccess(
  host: string,
  probe: string,
  options: AccessOptions,
  files: { fs: FileSystem; readTextFile(path: string): Promise<string> },
): Promise<RegistryAccess> {
  if (options.plainHttp === true) return { plainHttp: true };
  const certificates = await readCertificates(
    files.fs,
    files.readTextFile,
    options.certDir ?? `${options.certsBase}/${host}`,
  );
  const tls = Object.keys(certificates).length > 0 ? { tls: certificates } : {};
  const insecure = options.tlsVerify === false ||
    (options.tlsVerify === undefined && options.plainHttp === undefined &&
      (isLoopback(host) || isInsecureRegistry(host, options.insecureRegistries)));
  if (!insecure) return { plainHttp: false, ...tls };
  const unverified = { plainHttp: false, tls: { ...certificates, insecureSkipVerify: true } };
  try {
    await getRepositories(probe, { ...unverified, idleTimeout: PROBE_IDLE_TIMEOUT });
    return unverified;
  } catch (error) {
    // No TLS there (or nothing at all, which http will say): dockerd's next endpoint.
    if (isRegistryError(error, "UNREACHABLE") || isRegistryError(error, "TIMEOUT")) {
      return { plainHttp: true };
    }
    return unverified;
  }
}

/**
 * What to do about a certificate failure, naming the file docker would read and the flags.
 *
 * @param error The failure.
 * @param certsBase The certs.d directory.
 * @returns A hint line, or `null` for other failures.
 */
export function certificateHint(error: unknown, certsBase: string): string | null {
  if (!isRegistryError(error)) return null;
  const { reason, url } = error as RegistryError;
  if (url === undefined || !URL.canParse(url)) return null;
  const dir = `${certsBase}/${new URL(url).host}`;
  const flags = "--src-cert-dir/--dest-cert-dir DIR";
  if (reason === "certificate untrusted") {
    return `hint: put the registry's CA certificate in "${dir}/ca.crt" or pass ${flags} holding it (or --src-tls-verify=false/--dest-tls-verify=false to skip verification)`;
  }
  if (reason === "client certificate refused") {
    return `hint: put a client certificate and its key in "${dir}/client.cert" and "${dir}/client.key" or pass ${flags} holding them`;
  }
  if (reason === "certificate invalid") {
    return `hint: the certificate is expired or names another host; --src-tls-verify=false/--dest-tls-verify=false skips verification`;
  }
  return null;
}
