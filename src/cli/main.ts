// The CLI without its runtime: cli.ts passes in arguments, output streams, environment and
// the runtime's FileSystem, so everything here runs (and is tested) on any runtime.
//
// A command's modules are imported when it runs (`import()` below): start-up is most of a
// short command's time, and `link` then loads the registry client without the store commands,
// copy's ends or the Redis and KV stores, `-v` none of them.
import { errorCode } from "../_map_error.ts";
import { MetadataError } from "../errors.ts";
import type { FileSystem } from "../file_system.ts";
import type { FSMetadataStore } from "../fs_store.ts";
import { type CliArgs, type CommandName, parseArgs, USAGE, UsageError } from "./args.ts";
import type { CopyProgressMode } from "./copy_progress.ts";
import { escapeControls } from "./escape.ts";
import type { CommandContext } from "./commands.ts";
import type { ProgressCallback } from "./scan.ts";
import type { StoreLocation } from "./store_location.ts";

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
  /** Reads stdin to its end; rejects when it holds more than `maxBytes`. */
  readStdin(maxBytes: number): Promise<string>;
  /** The working directory (relative `oci:` paths of `copy`). */
  cwd: string;
  /**
   * Calls `listener` on Ctrl-C (SIGINT) until the returned function is called; `copy` aborts
   * then (a second Ctrl-C ends the process at once).
   */
  onInterrupt(listener: () => void): () => void;
  /** The package version. */
  version: string;
}

/** Exit statuses. */
const OK = 0;
const USAGE_ERROR = 2;

/**
 * Where dockerd keeps its data: the `data-root` of /etc/docker/daemon.json (which replaces
 * /var/lib/docker for dockerd too), else /var/lib/docker; then a rootless dockerd's.
 */
async function dataRoots(environment: CliEnvironment): Promise<string[]> {
  const roots: string[] = [];
  try {
    const daemon = JSON.parse(await environment.readTextFile("/etc/docker/daemon.json"));
    const root = daemon?.["data-root"] ?? daemon?.graph;
    if (typeof root === "string" && root.startsWith("/")) roots.push(root.replace(/\/+$/, ""));
  } catch {
    // No daemon.json, or not readable: the default below.
  }
  if (roots.length === 0) roots.push("/var/lib/docker");
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
  const roots = await dataRoots(environment);
  for (const dataRoot of roots) {
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
  const looked = roots.map((root) => `${root}/image/<driver>/distribution`).join(" nor ");
  throw new MetadataError("ENOENT", `Cannot find dockerd's store: no ${looked} (pass --root)`);
}

/**
 * The largest value file the CLI reads; a bigger one is reported, never read. dockerd's
 * biggest, a list of 50 entries with 255-character repository names, is about 22 KiB.
 */
const MAX_VALUE_BYTES = 1024 * 1024;

/**
 * Opens an existing store without creating anything, on a FileSystem that cannot write,
 * reading values of up to {@linkcode MAX_VALUE_BYTES} (the adapters refuse FIFOs, sockets
 * and devices without blocking).
 */
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
  const [{ FSMetadataStore }, { readOnlyFileSystem }] = await Promise.all([
    import("../fs_store.ts"),
    import("./read_only_file_system.ts"),
  ]);
  return await FSMetadataStore.open(root, {
    fs: readOnlyFileSystem(fs),
    maxValueBytes: MAX_VALUE_BYTES,
  });
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

/** How `copy` shows progress: JSON events, bars on a terminal, lines with --progress. */
function copyProgressMode(environment: CliEnvironment, args: CliArgs): CopyProgressMode {
  if (args.json) return "json";
  if (!(args.progress ?? environment.stderrIsTerminal)) return "none";
  return environment.stderrIsTerminal ? "terminal" : "lines";
}

/** Runs a command that talks to registries, its signal aborted on Ctrl-C. */
async function interruptible(
  environment: CliEnvironment,
  run: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  const stopListening = environment.onInterrupt(() => controller.abort());
  try {
    return await run(controller.signal);
  } finally {
    stopListening();
  }
}

/** What every command that talks to registries gets: files, credentials, output, signal. */
async function registryContext(
  environment: CliEnvironment,
  args: CliArgs,
  print: (line: string) => void,
  warn: (line: string) => void,
  signal: AbortSignal,
) {
  const { CommandCredentials } = await import("./auth.ts");
  return {
    args,
    fs: environment.fs,
    env: environment.env,
    readTextFile: environment.readTextFile,
    credentials: new CommandCredentials(args, environment, warn),
    print,
    warn,
    signal,
  };
}

/** The commands that read one store. */
type StoreCommandName = Exclude<
  CommandName,
  "copy" | "copy-store" | "link" | "sync" | "help" | "version" | keyof typeof REGISTRY_COMMANDS
>;

/** The commands on one registry, as registry_commands.ts names them. */
const REGISTRY_COMMANDS = {
  inspect: "inspectCommand",
  "list-tags": "listTagsCommand",
  delete: "deleteCommand",
} as const;

/** `ls`, `diffid`, `metadata`, `check` or `verify` on an open store. */
async function storeCommand(
  environment: CliEnvironment,
  context: CommandContext & { args: { command: StoreCommandName } },
): Promise<number> {
  const commands = await import("./commands.ts");
  switch (context.args.command) {
    case "ls":
      return await commands.listCommand(context);
    case "diffid":
      return await commands.diffIDCommand(context);
    case "metadata":
      return await commands.metadataCommand(context);
    case "check": {
      const { CommandCredentials } = await import("./auth.ts");
      context.credentials = await new CommandCredentials(context.args, environment, context.warn)
        .forCheck();
      return await commands.checkCommand(context);
    }
    case "verify":
      return await commands.verifyCommand(context);
  }
}

/**
 * Runs the CLI.
 *
 * @param environment What the runtime provides.
 * @returns The exit status: 0 ok, 1 not found or problems found, 2 usage error or failure.
 */
export async function runCli(environment: CliEnvironment): Promise<number> {
  // Lines can hold names from the store: their control characters are shown escaped.
  const print = (line: string) => environment.stdout(`${escapeControls(line)}\n`);
  const warn = (line: string) => environment.stderr(`${escapeControls(line)}\n`);
  const usageError = (error: unknown) => {
    warn(`error: ${(error as Error).message}`);
    environment.stderr(`\n${USAGE}\n`);
  };
  let args: CliArgs;
  try {
    args = parseArgs(environment.args);
  } catch (error) {
    usageError(error);
    return USAGE_ERROR;
  }
  if (args.command === "help") {
    environment.stdout(`${USAGE}\n`);
    return OK;
  }
  if (args.command === "version") {
    print(environment.version);
    return OK;
  }
  const progress = progressReporter(environment, args);
  const command = args.command;
  // A line of output first clears the progress line.
  const output = {
    print: (line: string) => (progress.done(), print(line)),
    warn: (line: string) => (progress.done(), warn(line)),
    progress: progress.report,
  };
  const openDirectory = (path: string) => openExisting(environment.fs, path);
  try {
    const context = (signal: AbortSignal) =>
      registryContext(environment, args, print, warn, signal);
    if (command === "copy-store") {
      const { copyStoreCommand } = await import("./copy_store_command.ts");
      return await copyStoreCommand({ args, fs: environment.fs, openDirectory, ...output });
    }
    if (command === "sync") {
      const { syncCommand } = await import("./sync_command.ts");
      return await interruptible(environment, async (signal) => syncCommand(await context(signal)));
    }
    if (command === "copy") {
      const [{ copyCommand }, { copyProgress }] = await Promise.all([
        import("./copy_command.ts"),
        import("./copy_progress.ts"),
      ]);
      return await interruptible(environment, async (signal) =>
        copyCommand({
          ...await context(signal),
          cwd: environment.cwd,
          progress: copyProgress(copyProgressMode(environment, args), environment),
        }));
    }
    if (command === "link") {
      const { linkCommand } = await import("./link_command.ts");
      return await interruptible(environment, async (signal) => linkCommand(await context(signal)));
    }
    if (command === "inspect" || command === "list-tags" || command === "delete") {
      const run = (await import("./registry_commands.ts"))[REGISTRY_COMMANDS[command]];
      return await interruptible(
        environment,
        async (signal) => run({ ...await context(signal), write: environment.stdout }),
      );
    }
    const { openStoreLocation, parseStoreLocation, showStoreLocation } = await import(
      "./store_location.ts"
    );
    const location: StoreLocation = args.store === undefined
      ? { kind: "directory", path: args.root ?? await findStore(environment) }
      : await parseStoreLocation(args.store, environment.fs, true);
    const opened = await openStoreLocation(location, openDirectory);
    try {
      return await storeCommand(environment, {
        store: opened.store,
        where: showStoreLocation(location),
        args: { ...args, command },
        ...output,
      });
    } finally {
      await opened.close();
    }
  } catch (error) {
    progress.done();
    if (error instanceof UsageError) usageError(error);
    else {
      warn(`error: ${error instanceof Error ? error.message : String(error)}`);
      const { certificateHint, certsBase } = await import("./registry_access.ts");
      const hint = certificateHint(error, certsBase(environment.env));
      if (hint !== null) warn(hint);
    }
    return USAGE_ERROR;
  } finally {
    progress.done();
  }
}
