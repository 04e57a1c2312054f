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
  | "inspect"
  | "list-tags"
  | "delete"
  | "sync"
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
  /** `--creds USER[:PASSWORD]`: the credentials of a command's one registry. */
  creds: string | undefined;
  /** `copy`: the source's own credentials and TLS (`--src-creds`, `--src-cert-dir`, …). */
  sourceCredentials: SideCredentialArgs;
  /** `copy`: the destination's own credentials and TLS (`--dest-…`). */
  destinationCredentials: SideCredentialArgs;
  /** `--cert-dir`: certificates for every registry instead of /etc/docker/certs.d/<host>. */
  certDir: string | undefined;
  /** `--tls-verify[=false]` for every registry. */
  tlsVerify: boolean | undefined;
  /** `--platform os/arch[/variant]`: the image of an index to take. */
  platform: string | undefined;
  /** `link --verify` / `--no-verify`; `undefined` means the default (verify). */
  verify: boolean | undefined;
  /** `inspect --raw`: the manifest as the registry serves it. */
  raw: boolean;
  /** `inspect --config`: the image's configuration. */
  config: boolean;
  /** `-q`, `--quiet`: the least output (the digest of `inspect`, nothing for `copy`, `delete`). */
  quiet: boolean;
  /** `copy --digestfile FILE`: where the copied manifest's digest is written. */
  digestFile: string | undefined;
  /** `sync --src yaml`: the source is skopeo's YAML list of images (default `docker`). */
  syncSource: string | undefined;
}

/** The credentials and TLS of one side of `copy`, as skopeo takes them. */
export interface SideCredentialArgs {
  /** `--src-cert-dir`/`--dest-cert-dir`: this side's certificates. */
  certDir: string | undefined;
  /** `--src-tls-verify`/`--dest-tls-verify[=false]`. */
  tlsVerify: boolean | undefined;
  /** `--src-creds`/`--dest-creds USER[:PASSWORD]` (the password from stdin when omitted). */
  creds: string | undefined;
  /** `--src-authfile`/`--dest-authfile`: a docker config.json for this side. */
  authFile: string | undefined;
  /** `--src-no-creds`/`--dest-no-creds`: this side anonymously. */
  noCreds: boolean;
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
  "inspect",
  "list-tags",
  "delete",
  "sync",
  "help",
];
/** The commands on one image or repository, and what they call their argument. */
const ON_REGISTRY: Partial<Record<CommandName, string>> = {
  inspect: "docker://REF",
  "list-tags": "docker://REPOSITORY",
  delete: "docker://REF",
};
const WITH_ARGUMENT: readonly CommandName[] = [
  "diffid",
  "metadata",
  ...Object.keys(ON_REGISTRY) as CommandName[],
];
const VALUE_OPTIONS = {
  "--root": "root",
  "-r": "root",
  "--store": "store",
  "--auth": "authFile",
  "--authfile": "authFile",
  "--creds": "creds",
  "--cert-dir": "certDir",
  "--digestfile": "digestFile",
  "--src": "syncSource",
  "--username": "username",
  "-u": "username",
  "--password": "password",
  "-p": "password",
  "--identity-token": "identityToken",
  "--registry-token": "registryToken",
  "--target": "target",
  "--platform": "platform",
} as const;
/** The per-side options of `copy`: the side, and its field. */
const SIDE_OPTIONS = {
  "--src-creds": ["sourceCredentials", "creds"],
  "--dest-creds": ["destinationCredentials", "creds"],
  "--src-authfile": ["sourceCredentials", "authFile"],
  "--dest-authfile": ["destinationCredentials", "authFile"],
  "--src-cert-dir": ["sourceCredentials", "certDir"],
  "--dest-cert-dir": ["destinationCredentials", "certDir"],
} as const;
/** `--tls-verify[=BOOL]`, for every registry or one side. */
const TLS_VERIFY = ["--tls-verify", "--src-tls-verify", "--dest-tls-verify"];
/** What `--help` and `--version` ask for instead of a command. */
interface Asked {
  help: boolean;
  version: boolean;
}

/** The options without a value, and what each sets. */
const FLAGS: Readonly<Record<string, (args: CliArgs, asked: Asked) => void>> = {
  "--json": (args) => args.json = true,
  "--no-trunc": (args) => args.noTrunc = true,
  "--password-stdin": (args) => args.passwordStdin = true,
  "--progress": (args) => args.progress = true,
  "--no-progress": (args) => args.progress = false,
  "--plain-http": (args) => args.plainHttp = true,
  "--no-plain-http": (args) => args.plainHttp = false,
  "--all": (args) => args.all = true,
  "--verify": (args) => args.verify = true,
  "--no-verify": (args) => args.verify = false,
  "--raw": (args) => args.raw = true,
  "--config": (args) => args.config = true,
  "-q": (args) => args.quiet = true,
  "--quiet": (args) => args.quiet = true,
  "--src-no-creds": (args) => args.sourceCredentials.noCreds = true,
  "--dest-no-creds": (args) => args.destinationCredentials.noCreds = true,
  "-h": (_, asked) => asked.help = true,
  "--help": (_, asked) => asked.help = true,
  "-v": (_, asked) => asked.version = true,
  "--version": (_, asked) => asked.version = true,
};

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
                        $XDG_DATA_HOME/distribution-metadata/distribution); docker-daemon:NAME:TAG
                        into or out of dockerd (recording into dockerd's store by default; out of
                        it, layers the registry has are found by DiffID, not compressed),
                        docker-archive:PATH and oci-archive:PATH into or out of archives
  link docker-daemon:IMAGE docker://REF
                        record in dockerd's store (from $DOCKER_HOST; --root overrides) the
                        entries docker pull of REF would write, so docker push skips or mounts
                        every layer; each layer is read once to prove its DiffID (--no-verify
                        trusts the registry's manifest instead: see docs/security.md)
  inspect docker://REF  the image: digest, media type, platforms, tags, layers, os/arch/created
                        (--raw: the manifest as served; --config: the configuration; -q: digest)
  list-tags docker://REPOSITORY
                        the repository's tags, one a line
  delete docker://REF   deletes the manifest (a tag is resolved to its digest first)
  sync docker://REPO docker://DEST
                        every tag of a repository into DEST/<last name part>, one image at a time,
                        one metadata store; run again to resume (blobs there are not sent again)
  sync --src yaml FILE docker://DEST
                        the images a skopeo sync YAML list names

Options:
  -r, --root <dir>      the store (default: /var/lib/docker/image/<driver>/distribution, under
                        the data-root of /etc/docker/daemon.json when it names one)
  --store <location>    any store: a directory, a Deno KV file or URL (kv:<path>, https://…),
                        or redis://host:port[/db][?prefix=p]
  --json, --format json machine-readable output (copy: one JSON event per line)
  -q, --quiet           the least output: inspect the digest, copy and delete nothing
  --digestfile <file>   copy: write the copied manifest's digest to <file>
  --no-trunc            full digests in tables
  --progress            progress on stderr (default: when stderr is a terminal)
  --no-progress         no progress output
  --auth, --authfile <config.json>
                        check, copy: credentials from a docker config.json and its helpers
                        (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json)
  --creds <user[:pw]>   check, inspect, list-tags, delete: the credentials (the password from
                        stdin when omitted)
  --src-creds <user[:pw]>, --dest-creds <user[:pw]>
                        copy: one side's credentials (the password from stdin when omitted)
  --src-authfile <f>, --dest-authfile <f>
                        copy: one side's docker config.json
  --src-no-creds, --dest-no-creds
                        copy: one side without credentials
  -u, --username <name> check, copy: credentials given as fields instead (copy: only when both
                        sides are on the same registry)
  --password-stdin      check, copy: the password from stdin (with --username)
  -p, --password <pw>   check, copy: the password (shows in the process list; prefer the above)
  --identity-token <t>  check, copy: an identity token
  --registry-token <t>  check, copy: a registry token
  --target <repo>       check: the repository being pushed to, e.g. registry.example.com/team/app
  The registry options below hold for copy, inspect, list-tags and delete:
  --plain-http          every registry over http
  --no-plain-http       every registry over https, verified, loopback ones too
                        (default: as dockerd, loopback registries and daemon.json's
                        insecure-registries over https unverified, else over plain http)
  --cert-dir <dir>      *.crt CAs and *.cert/*.key client pairs for every registry
                        (default: /etc/docker/certs.d/<host:port>/, as docker reads it)
  --src-cert-dir <dir>, --dest-cert-dir <dir>
                        copy: one side's certificates
  --tls-verify[=false]  false treats every registry as insecure (https unverified, then
                        http); true verifies loopback registries too
  --src-tls-verify[=false], --dest-tls-verify[=false]
                        copy: the same for one side
  --all                 copy: every image of an index (default: one platform's)
  --platform <os/arch[/variant]>
                        copy: the image of an index to copy (default: this machine's, e.g.
                        linux/amd64); link: the one to link (default: the image's own)
  --verify              link: prove each layer's DiffID from its bytes (the default)
  --no-verify           link: trust the registry's manifest, download nothing
  -h, --help            this text
  -v, --version         the version

Exit status: 0 ok, 1 not found or problems found, 2 usage error or failure, 130 interrupted.`;

/** No per-side option given. */
function side(): SideCredentialArgs {
  return {
    creds: undefined,
    authFile: undefined,
    noCreds: false,
    certDir: undefined,
    tlsVerify: undefined,
  };
}

/** One side's credential options: only on `copy`, one way at a time. */
function checkSide(command: CommandName, prefix: string, side: SideCredentialArgs): void {
  const tls = [
    side.certDir === undefined ? null : `--${prefix}-cert-dir`,
    side.tlsVerify === undefined ? null : `--${prefix}-tls-verify`,
  ].filter((name) => name !== null);
  if (tls.length > 0 && command !== "copy" && command !== "sync") {
    throw new UsageError(`Option "${tls[0]}" is for "copy"; use "--cert-dir" or "--tls-verify"`);
  }
  const given = [
    side.creds === undefined ? null : `--${prefix}-creds`,
    side.authFile === undefined ? null : `--${prefix}-authfile`,
    side.noCreds ? `--${prefix}-no-creds` : null,
  ].filter((name) => name !== null);
  if (given.length > 0 && command !== "copy" && command !== "sync") {
    throw new UsageError(`Option "${given[0]}" is for "copy"; use "--creds" or "--authfile"`);
  }
  if (given.length > 1) {
    throw new UsageError(`Pass either "${given[0]}" or "${given[1]}", not both`);
  }
}

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
    creds: undefined,
    sourceCredentials: side(),
    destinationCredentials: side(),
    certDir: undefined,
    tlsVerify: undefined,
    platform: undefined,
    verify: undefined,
    raw: false,
    config: false,
    quiet: false,
    digestFile: undefined,
    syncSource: undefined,
  };
  const positional: string[] = [];
  const asked: Asked = { help: false, version: false };
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
    if (name in SIDE_OPTIONS) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`Option "${name}" needs a value`);
      const [side, field] = SIDE_OPTIONS[name as keyof typeof SIDE_OPTIONS];
      args[side][field] = value;
      continue;
    }
    if (name === "--format") {
      const value = inline ?? argv[++i];
      if (value !== "json") {
        throw new UsageError(`Option "--format" takes "json", not ${JSON.stringify(value ?? "")}`);
      }
      args.json = true;
      continue;
    }
    if (TLS_VERIFY.includes(name)) {
      if (inline !== undefined && inline !== "true" && inline !== "false") {
        throw new UsageError(`Option "${name}" is true or false, not "${inline}"`);
      }
      const verify = inline !== "false";
      if (name === "--tls-verify") args.tlsVerify = verify;
      else {args[name === "--src-tls-verify" ? "sourceCredentials" : "destinationCredentials"]
          .tlsVerify = verify;}
      continue;
    }
    const flag = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    if (flag === undefined) throw new UsageError(`Unknown option "${name}"`);
    if (inline !== undefined) throw new UsageError(`Option "${name}" takes no value`);
    flag(args, asked);
  }
  if (asked.help) return { ...args, command: "help" };
  if (asked.version) return { ...args, command: "version" };
  const [command, ...rest] = positional;
  if (command === undefined) return args;
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`Unknown command "${command}"`);
  }
  args.command = command as CommandName;
  const copying = args.command === "copy-store" || args.command === "copy" ||
    args.command === "link" || args.command === "sync";
  if (copying && rest.length < 2) {
    const what = args.command === "copy-store" ? "store" : "image";
    throw new UsageError(`Command "${command}" needs a source and a destination ${what}`);
  }
  const wanted = WITH_ARGUMENT.includes(args.command) ? 1 : copying ? 2 : 0;
  if (rest.length < wanted) {
    throw new UsageError(
      `Command "${command}" needs ${
        ON_REGISTRY[args.command] ?? (command === "diffid" ? "a digest" : "a DiffID")
      }`,
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
  if (args.creds !== undefined && (fields !== undefined || args.authFile !== undefined)) {
    throw new UsageError(`Pass either "--creds" or "--username"/"--auth", not both`);
  }
  if ((args.command === "copy" || args.command === "sync") && args.creds !== undefined) {
    throw new UsageError(`"${args.command}" has two sides: pass "--src-creds" and "--dest-creds"`);
  }
  checkSide(args.command, "src", args.sourceCredentials);
  checkSide(args.command, "dest", args.destinationCredentials);
  if ((args.raw || args.config) && args.command !== "inspect") {
    throw new UsageError(`Option "${args.raw ? "--raw" : "--config"}" is for "inspect"`);
  }
  if (args.raw && args.config) throw new UsageError(`Pass either "--raw" or "--config", not both`);
  if (args.digestFile !== undefined && args.command !== "copy") {
    throw new UsageError(`Option "--digestfile" is for "copy"`);
  }
  if (args.syncSource !== undefined && args.command !== "sync") {
    throw new UsageError(`Option "--src" is for "sync"`);
  }
  if (args.syncSource !== undefined && args.syncSource !== "docker" && args.syncSource !== "yaml") {
    throw new UsageError(`Option "--src" takes "docker" or "yaml", not "${args.syncSource}"`);
  }
  return args;
}
