// The CLI without its runtime: cli.ts passes in arguments, output streams, environment and
// the runtime's FileSystem, so everything here runs (and is tested) on any runtime.
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";
import { FSMetadataStore } from "../fs_store.ts";
import { type CliArgs, parseArgs, USAGE, UsageError } from "./args.ts";
import { type CredentialResolver, credentialsFromConfig, credentialsFromFields } from "./auth.ts";
import {
  checkCommand,
  type CommandContext,
  diffIDCommand,
  listCommand,
  metadataCommand,
  verifyCommand,
} from "./commands.ts";
import type { ProgressCallback } from "./scan.ts";
import { copyStoreCommand, storeLocationCommand } from "./store_commands.ts";
import { parseStoreLocation } from "./store_location.ts";

/** What cli.ts provides from the runtime. */
export interface CliEnvironment {
  /** The arguments after the script name. */
  args: readonly string[];
  /** The runtime's filesystem. */
  fs: FileSystem;
  /** Writes text to stdout as is. */
  stdout(text: string): void;
  /** Writes text to stderr as is. */
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress is shown then). */
  stderrIsTerminal: boolean;
  /** An environment variable. */
  env(name: string): string | undefined;
  /** Reads a text file, following symlinks (for docker's config.json). */
  readTextFile(path: string): Promise<string>;
  /** The package version. */
  version: string;
}

/** Exit statuses. */
const OK = 0;
const USAGE_ERROR = 2;

/** Where dockerd keeps its data, most likely first. */
async function dataRoots(environment: CliEnvironment): Promise<string[]> {
  const roots: string[] = [];
  try {
    const daemon = JSON.parse(await environment.readTextFile("/etc/docker/daemon.json"));
    const root = daemon?.["data-root"] ?? daemon?.graph;
    if (typeof root === "string" && root.startsWith("/")) roots.push(root.replace(/\/+$/, ""));
  } catch {
    // No daemon.json, or not readable: the defaults below.
  }
  roots.push("/var/lib/docker");
  const home = environment.env("HOME");
  const dataHome = environment.env("XDG_DATA_HOME") ?? (home ? `${home}/.local/share` : undefined);
  if (dataHome) roots.push(`${dataHome}/docker`); // rootless dockerd
  return [...new Set(roots)];
}

/** Finds `<data-root>/image/<driver>/distribution`, as a dockerd with a graph driver has it. */
async function findStore(environment: CliEnvironment): Promise<string> {
  const { fs } = environment;
  const found: string[] = [];
  const denied: string[] = [];
  for (const dataRoot of await dataRoots(environment)) {
    const images = `${dataRoot}/image`;
    let drivers: string[];
    try {
      drivers = await fs.readDir(images);
    } catch (error) {
      const code = errorCode(error);
      if (code === "EACCES" || code === "EPERM") denied.push(images);
      continue;
    }
    for (const driver of drivers.sort()) {
      const path = `${images}/${driver}/distribution`;
      try {
        if ((await fs.stat(path))?.kind === "directory") found.push(path);
      } catch (error) {
        if (errorCode(error) === "EACCES") denied.push(path);
      }
    }
    if (found.length > 0) break;
  }
  if (found.length === 1) return found[0]!;
  if (found.length > 1) {
    throw new MetadataError(
      "EEXIST",
      `Cannot choose a store: found ${found.map((path) => `"${path}"`).join(", ")}; pass --root`,
    );
  }
  if (denied.length > 0) {
    throw new MetadataError(
      "EACCES",
      `Cannot find dockerd's store: permission denied reading "${
        denied[0]
      }" (run as root or pass --root)`,
      { path: denied[0]! },
    );
  }
  throw new MetadataError(
    "ENOENT",
    "Cannot find dockerd's store: no /var/lib/docker/image/<driver>/distribution (pass --root)",
  );
}

/** Opens an existing store without creating anything. */
async function openExisting(fs: FileSystem, root: string): Promise<FSMetadataStore> {
  const fail = (code: string, why: string) =>
    new MetadataError(code, `Cannot open store "${root}": ${why}`, { path: root });
  let info;
  try {
    info = await fs.stat(root);
  } catch (error) {
    const code = errorCode(error);
    throw fail(code, code === "EACCES" ? "permission denied" : String(error));
  }
  if (info === null) throw fail("ENOENT", "no such file or directory");
  if (info.kind === "file" || info.kind === "other") throw fail("ENOTDIR", "not a directory");
  try {
    await fs.readDir(root);
  } catch (error) {
    const code = errorCode(error);
    throw fail(code, code === "EACCES" ? "permission denied" : String(error));
  }
  return await FSMetadataStore.open(root, { fs });
}

/** Progress on stderr: a rewritten line on a terminal, a line per 1000 items otherwise. */
function progressReporter(environment: CliEnvironment, args: CliArgs): {
  report: ProgressCallback | undefined;
  done(): void;
} {
  const enabled = args.progress ?? environment.stderrIsTerminal;
  if (!enabled) return { report: undefined, done() {} };
  const terminal = environment.stderrIsTerminal;
  const started = Date.now();
  let last = 0;
  let shown = false;
  return {
    report(phase, done, total) {
      const text = total === undefined ? `${phase}: ${done} files` : `${phase}: ${done}/${total}`;
      if (terminal) {
        const now = Date.now();
        if (now - started < 200 || now - last < 100) return;
        last = now;
        shown = true;
        environment.stderr(`\r${text}\x1b[K`);
      } else if (done % 1000 === 0 || done === total) {
        environment.stderr(`${text}\n`);
      }
    },
    done() {
      if (shown) environment.stderr("\r\x1b[K");
      shown = false;
    },
  };
}

async function credentials(
  environment: CliEnvironment,
  args: CliArgs,
): Promise<CredentialResolver> {
  if (
    args.username !== undefined || args.identityToken !== undefined ||
    args.registryToken !== undefined
  ) {
    if (args.authFile !== undefined) {
      throw new UsageError(`Pass either "--auth" or credential fields, not both`);
    }
    return credentialsFromFields({
      ...(args.username === undefined ? {} : { username: args.username }),
      ...(args.password === undefined ? {} : { password: args.password }),
      ...(args.identityToken === undefined ? {} : { identitytoken: args.identityToken }),
      ...(args.registryToken === undefined ? {} : { registrytoken: args.registryToken }),
    });
  }
  let path = args.authFile;
  if (path === undefined) {
    const configDir = environment.env("DOCKER_CONFIG") ??
      `${environment.env("HOME") ?? ""}/.docker`;
    path = `${configDir}/config.json`;
  }
  let text: string;
  try {
    text = await environment.readTextFile(path);
  } catch (error) {
    const code = errorCode(error);
    const why = code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES"
      ? "permission denied"
      : String(error);
    throw new MetadataError(code, `Cannot read credentials "${path}": ${why}`, { path });
  }
  return credentialsFromConfig(text, path);
}

/**
 * Runs the CLI.
 *
 * @param environment What the runtime provides.
 * @returns The exit status: 0 ok, 1 not found or problems found, 2 usage error or failure.
 */
export async function runCli(environment: CliEnvironment): Promise<number> {
  const print = (line: string) => environment.stdout(`${line}\n`);
  const warn = (line: string) => environment.stderr(`${line}\n`);
  let args: CliArgs;
  try {
    args = parseArgs(environment.args);
  } catch (error) {
    warn(`error: ${(error as Error).message}\n\n${USAGE}`);
    return USAGE_ERROR;
  }
  if (args.command === "help") {
    print(USAGE);
    return OK;
  }
  if (args.command === "version") {
    print(environment.version);
    return OK;
  }
  const progress = progressReporter(environment, args);
  try {
    // copy-store, and --store naming a Deno KV database or a Redis server: store_commands.ts.
    const stores = {
      args,
      fs: environment.fs,
      openDirectory: (path: string) => openExisting(environment.fs, path),
      print: (line: string) => (progress.done(), print(line)),
      warn: (line: string) => (progress.done(), warn(line)),
      progress: progress.report,
    };
    if (args.command === "copy-store") return await copyStoreCommand(stores);
    const location = args.store === undefined
      ? undefined
      : await parseStoreLocation(args.store, environment.fs, true);
    if (location && location.kind !== "directory") {
      return await storeLocationCommand(stores, location);
    }
    const root = location?.path ?? args.root ?? await findStore(environment);
    const store = await openExisting(environment.fs, root);
    const context: CommandContext = {
      store,
      args,
      print: (line) => {
        progress.done();
        print(line);
      },
      warn: (line) => {
        progress.done();
        warn(line);
      },
      progress: progress.report,
    };
    switch (args.command) {
      case "ls":
        return await listCommand(context);
      case "diffid":
        return await diffIDCommand(context);
      case "metadata":
        return await metadataCommand(context);
      case "check":
        context.credentials = await credentials(environment, args);
        return await checkCommand(context);
      case "verify":
        return await verifyCommand(context);
    }
  } catch (error) {
    progress.done();
    if (error instanceof UsageError) {
      warn(`error: ${error.message}\n\n${USAGE}`);
    } else warn(`error: ${error instanceof Error ? error.message : String(error)}`);
    return USAGE_ERROR;
  } finally {
    progress.done();
  }
}
