// Command-line parsing for cli.ts: `[options] <command> [argument]`, options anywhere,
// `--name value` or `--name=value`, `--` ends the options.

/** The commands the CLI knows. */
export type CommandName =
  | "ls"
  | "diffid"
  | "metadata"
  | "check"
  | "verify"
  | "copy-store"
  | "copy"
  | "link"
  | "help"
  | "version";

/** What the command line asked for. */
export interface CliArgs {
  command: CommandName;
  /** The positional argument of `diffid` and `metadata`, the source of `copy` and `copy-store`. */
  argument: string | undefined;
  /** `--root`: the store directory; `undefined` means "find dockerd's". */
  root: string | undefined;
  /** `--store`: a directory, a Deno KV path or URL, or a Redis URL (store_location.ts). */
  store: string | undefined;
  /** The second positional argument of `copy` and `copy-store`: the destination. */
  destination: string | undefined;
  json: boolean;
  /** `--no-trunc`: full digests in tables. */
  noTrunc: boolean;
  /** `--progress` / `--no-progress`; `undefined` means "when stderr is a terminal". */
  progress: boolean | undefined;
  /** `--auth <config.json>` for `check`. */
  authFile: string | undefined;
  username: string | undefined;
  password: string | undefined;
  /** `--password-stdin`: the password is read from stdin, as `docker login` reads it. */
  passwordStdin: boolean;
  identityToken: string | undefined;
  registryToken: string | undefined;
  /** `--target <repository>` for `check`: the repository being pushed to. */
  target: string | undefined;
  /**
   * `copy`: `--plain-http` (every registry over http), `--no-plain-http` (every one over
   * https); `undefined` means http for loopback hosts only.
   */
  plainHttp: boolean | undefined;
  /** `copy --all`: every image of an index, not only one platform's. */
  all: boolean;
  /** `--platform os/arch[/variant]`: the image of an index to take. */
  platform: string | undefined;
  /** `link --verify` / `--no-verify`; `undefined` means the default (verify). */
  verify: boolean | undefined;
}

/** A command line the CLI cannot run; the message says why. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the command line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const COMMANDS: readonly CommandName[] = [
  "ls",
  "diffid",
  "metadata",
  "check",
  "verify",
  "copy-store",
  "copy",
  "link",
  "help",
];
const WITH_ARGUMENT: readonly CommandName[] = ["diffid", "metadata"];
const VALUE_OPTIONS = {
  "--root": "root",
  "-r": "root",
  "--store": "store",
  "--auth": "authFile",
  "--username": "username",
  "-u": "username",
  "--password": "password",
  "-p": "password",
  "--identity-token": "identityToken",
  "--registry-token": "registryToken",
  "--target": "target",
  "--platform": "platform",
} as const;

/** The usage text printed by `help`, `--help` and after a usage error. */
export const USAGE = `Usage: distribution-metadata [options] <command> [argument]

Reads Docker's distribution metadata store (read-only), and copies images between
registries and OCI layouts, recording where their layers went.

Commands:
  ls                    every DiffID with its blob digests, source repositories and HMAC state
  diffid <digest>       the DiffID a blob digest maps to
  metadata <diffID>     the entries recorded for a layer DiffID
  check                 which entries the given credentials may mount from, as dockerd decides
  verify                consistency report; exit status 1 when problems are found
  copy-store <src> <dst> copy every entry into another store (missing keys and list entries only;
                        run again to resume)
  copy <src> <dst>      copy an image: docker://REF or oci:DIR[:TAG] on either side, recording
                        into the metadata store (--root or --store; default: the user's own,
                        $XDG_DATA_HOME/distribution-metadata/distribution)
  link docker-daemon:IMAGE docker://REF
                        record in dockerd's store (from $DOCKER_HOST; --root overrides) the
                        entries docker pull of REF would write, so docker push skips or mounts
                        every layer; each layer is read once to prove its DiffID (--no-verify
                        trusts the registry's manifest instead: see docs/security.md)

Options:
  -r, --root <dir>      the store (default: /var/lib/docker/image/<driver>/distribution, under
                        the data-root of /etc/docker/daemon.json when it names one)
  --store <location>    any store: a directory, a Deno KV file or URL (kv:<path>, https://…),
                        or redis://host:port[/db][?prefix=p]
  --json                machine-readable output (copy: one JSON event per line)
  --no-trunc            full digests in tables
  --progress            progress on stderr (default: when stderr is a terminal)
  --no-progress         no progress output
  --auth <config.json>  check, copy: credentials from a docker config.json and its helpers
                        (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)
  -u, --username <name> check, copy: credentials given as fields instead (for every registry)
  --password-stdin      check, copy: the password from stdin (with --username)
  -p, --password <pw>   check, copy: the password (shows in the process list; prefer the above)
  --identity-token <t>  check, copy: an identity token
  --registry-token <t>  check, copy: a registry token
  --target <repo>       check: the repository being pushed to, e.g. registry.example.com/team/app
  --plain-http          copy: every registry over http (default: only 127.0.0.1, localhost, [::1])
  --no-plain-http       copy: every registry over https, loopback ones too
  --all                 copy: every image of an index (default: one platform's)
  --platform <os/arch[/variant]>
                        copy: the image of an index to copy (default: this machine's, e.g.
                        linux/amd64); link: the one to link (default: the image's own)
  --verify              link: prove each layer's DiffID from its bytes (the default)
  --no-verify           link: trust the registry's manifest, download nothing
  -h, --help            this text
  -v, --version         the version

Exit status: 0 ok, 1 not found or problems found, 2 usage error or failure, 130 interrupted.`;

/**
 * Parses the arguments after the script name.
 *
 * @param argv The arguments, e.g. `["--json", "ls"]`.
 * @returns What to run.
 */
export function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = {
    command: "help",
    argument: undefined,
    root: undefined,
    store: undefined,
    destination: undefined,
    json: false,
    noTrunc: false,
    progress: undefined,
    authFile: undefined,
    username: undefined,
    password: undefined,
    passwordStdin: false,
    identityToken: undefined,
    registryToken: undefined,
    target: undefined,
    plainHttp: undefined,
    all: false,
    platform: undefined,
    verify: undefined,
  };
  const positional: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const equals = arg.indexOf("=");
    const name = arg.startsWith("--") && equals > 0 ? arg.slice(0, equals) : arg;
    const inline = name === arg ? undefined : arg.slice(equals + 1);
    if (name in VALUE_OPTIONS) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`Option "${name}" needs a value`);
      args[VALUE_OPTIONS[name as keyof typeof VALUE_OPTIONS]] = value;
      continue;
    }
    if (inline !== undefined) throw new UsageError(`Option "${name}" takes no value`);
    switch (name) {
      case "--json":
        args.json = true;
        break;
      case "--no-trunc":
        args.noTrunc = true;
        break;
      case "--password-stdin":
        args.passwordStdin = true;
        break;
      case "--progress":
        args.progress = true;
        break;
      case "--no-progress":
        args.progress = false;
        break;
      case "--plain-http":
        args.plainHttp = true;
        break;
      case "--no-plain-http":
        args.plainHttp = false;
        break;
      case "--all":
        args.all = true;
        break;
      case "--verify":
        args.verify = true;
        break;
      case "--no-verify":
        args.verify = false;
        break;
      case "-h":
      case "--help":
        help = true;
        break;
      case "-v":
      case "--version":
        version = true;
        break;
      default:
        throw new UsageError(`Unknown option "${arg}"`);
    }
  }
  if (help) return { ...args, command: "help" };
  if (version) return { ...args, command: "version" };
  const [command, ...rest] = positional;
  if (command === undefined) return args;
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`Unknown command "${command}"`);
  }
  args.command = command as CommandName;
  const copying = args.command === "copy-store" || args.command === "copy" ||
    args.command === "link";
  if (copying && rest.length < 2) {
    const what = args.command === "copy-store" ? "store" : "image";
    throw new UsageError(`Command "${command}" needs a source and a destination ${what}`);
  }
  const wanted = WITH_ARGUMENT.includes(args.command) ? 1 : copying ? 2 : 0;
  if (rest.length < wanted) {
    throw new UsageError(
      `Command "${command}" needs a ${command === "diffid" ? "digest" : "DiffID"}`,
    );
  }
  if (rest.length > wanted) throw new UsageError(`Unexpected argument "${rest[wanted]}"`);
  args.argument = rest[0];
  args.destination = rest[1];
  if (args.store !== undefined && args.root !== undefined) {
    throw new UsageError(`Pass either "--root" or "--store", not both`);
  }
  if (args.all && args.platform !== undefined) {
    throw new UsageError(`Pass either "--all" or "--platform", not both`);
  }
  if (args.password !== undefined && args.passwordStdin) {
    throw new UsageError(`Pass either "--password" or "--password-stdin", not both`);
  }
  const passwordOption = args.passwordStdin
    ? "--password-stdin"
    : args.password === undefined
    ? undefined
    : "--password";
  if (passwordOption !== undefined && args.username === undefined) {
    throw new UsageError(`Option "${passwordOption}" needs "--username"`);
  }
  const fields = args.username ?? args.identityToken ?? args.registryToken;
  if (fields !== undefined && args.authFile !== undefined) {
    throw new UsageError(`Pass either "--auth" or credential fields, not both`);
  }
  return args;
}
