// Command-line arguments of `syncengine`, parsed with Node's own util.parseArgs.
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors';
import { parseCompareMode, parseConflictStrategy, parseInitialPreference, parseSyncMode, type PlanOptions } from '../core/options';

export type Command = 'sync' | 'plan' | 'status' | 'clear';
export const COMMANDS: readonly Command[] = ['sync', 'plan', 'status', 'clear'];

export interface CliArgs {
  command: Command;
  source: string;
  destination: string;
  options: PlanOptions;
  stateDir?: string;
  ignoreFile?: string;
  transfers?: number;
  operations?: number;
  maxDelete?: number;
  trashDays?: number;
  force: boolean;
  json: boolean;
  quiet: boolean;
  /** Only these paths (relative to both roots). */
  paths?: string[];
  keyFile?: string;
  knownHosts?: string;
  acceptHostKey?: string;
  ftpsImplicit: boolean;
  allowUntrustedCert: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle: boolean;
  connections?: number;
}

export const USAGE = `Usage:
  syncengine sync <source> <destination> [options]    run a sync
  syncengine plan <source> <destination> [options]    dry run: print the plan, change nothing
  syncengine status <source> <destination> [options]  what would change, in counts
  syncengine clear <source> <destination> [options]   forget the sync state: the next run compares everything

Targets: a folder path, sftp://[user@]host[:port]/path (/~/path: from the login folder),
  ftp://[user@]host[:port]/path, ftps://…, s3://bucket[/prefix]. Passwords and key passphrases come
  from SYNCENGINE_PASSWORD / SYNCENGINE_PASSPHRASE or a prompt; S3 keys from the AWS environment.

Options:
  --mode two-way|source-to-destination|source-backup|destination-to-source|destination-backup
         (aliases tw, std, sb, dts, db; default two-way)
  --compare hash-then-mtime|size-only|hash-only|mtime-only|size-and-mtime   (default hash-then-mtime)
  --conflict newest-wins|source-wins|destination-wins|keep-both|manual      (default newest-wins)
  --initial merge|source-wins|destination-wins     first sync only (default merge)
  --state-dir DIR      where the pair's state lives (default <source>/.sync_state)
  --ignore-file FILE   extra gitignore-style patterns (besides .syncignore files)
  --path P             sync only this file or folder (relative; repeatable)
  --transfers N        parallel transfers (default 8)
  --operations N       parallel other operations (default 16)
  --max-delete PCT     refuse to delete more than PCT% of a side's files (default 50)
  --trash-days N       keep deleted and overwritten files this many days (default 30)
  --force              bypass the delete guards
  --key FILE           private key for SFTP (default: ssh-agent, ~/.ssh/config, ~/.ssh/id_*)
  --known-hosts FILE   known_hosts to check SFTP host keys against (default ~/.ssh/known_hosts)
  --accept-host-key SHA256:…   trust this host key fingerprint for a host not in known_hosts
  --ftps-implicit      FTPS with implicit TLS (default: explicit AUTH TLS)
  --allow-untrusted-cert   accept an FTPS certificate that does not verify (self-signed)
  --s3-endpoint URL    S3-compatible endpoint   --s3-region R   --s3-path-style
  --connections N      parallel connections to a remote server
  --json               print one JSON summary on stdout
  --quiet              no progress line
  -h, --help           this help
  -V, --version        the version

Exit codes: 0 in sync, 1 error, 2 usage or config error, 3 conflicts left unresolved, 4 a safety guard refused.`;

function positiveInt(name: string, value: string | undefined, min = 1, max = 1024): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

export type ParsedCommandLine = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; args: CliArgs };

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        mode: { type: 'string' },
        compare: { type: 'string' },
        conflict: { type: 'string' },
        initial: { type: 'string' },
        'state-dir': { type: 'string' },
        'ignore-file': { type: 'string' },
        path: { type: 'string', multiple: true },
        transfers: { type: 'string' },
        operations: { type: 'string' },
        'max-delete': { type: 'string' },
        'trash-days': { type: 'string' },
        key: { type: 'string' },
        'known-hosts': { type: 'string' },
        'accept-host-key': { type: 'string' },
        'ftps-implicit': { type: 'boolean', default: false },
        'allow-untrusted-cert': { type: 'boolean', default: false },
        's3-endpoint': { type: 'string' },
        's3-region': { type: 'string' },
        's3-path-style': { type: 'boolean', default: false },
        connections: { type: 'string' },
        password: { type: 'string' },
        force: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'V', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, source, destination, ...rest] = positionals;
  if (!command) throw new UsageError('No command given');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new UsageError(`Unknown command "${command}". Commands: ${COMMANDS.join(', ')}`);
  if (source === undefined || destination === undefined) throw new UsageError(`"${command}" needs a source and a destination`);
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const maxDelete = values['max-delete'];
  if (maxDelete !== undefined && !(/^\d+(\.\d+)?$/.test(maxDelete) && Number(maxDelete) <= 100)) {
    throw new UsageError(`--max-delete must be a percentage from 0 to 100, not "${maxDelete}"`);
  }
  const args: CliArgs = {
    command: command as Command,
    source,
    destination,
    options: {
      mode: values.mode !== undefined ? parseSyncMode(values.mode) : 'two-way',
      compare: values.compare !== undefined ? parseCompareMode(values.compare) : 'hash-then-mtime',
      conflict: values.conflict !== undefined ? parseConflictStrategy(values.conflict) : 'newest-wins',
      initial: values.initial !== undefined ? parseInitialPreference(values.initial) : 'merge',
    },
    force: values.force,
    json: values.json,
    quiet: values.quiet,
    ftpsImplicit: values['ftps-implicit'],
    allowUntrustedCert: values['allow-untrusted-cert'],
    s3PathStyle: values['s3-path-style'],
  };
  if (values.password !== undefined) {
    throw new UsageError('Passwords are not taken on the command line (they would end up in shell history and process lists). Set SYNCENGINE_PASSWORD or answer the prompt.');
  }
  if (values.key !== undefined) args.keyFile = values.key;
  if (values['known-hosts'] !== undefined) args.knownHosts = values['known-hosts'];
  if (values['accept-host-key'] !== undefined) {
    if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(values['accept-host-key'])) throw new UsageError(`--accept-host-key takes a fingerprint like SHA256:… (43 base64 characters), as ssh-keygen -lf prints it`);
    args.acceptHostKey = values['accept-host-key'];
  }
  if (values['s3-endpoint'] !== undefined) {
    if (!/^https?:\/\/[^/]/.test(values['s3-endpoint'])) throw new UsageError(`--s3-endpoint must be an http:// or https:// URL, not "${values['s3-endpoint']}"`);
    args.s3Endpoint = values['s3-endpoint'];
  }
  if (values['s3-region'] !== undefined) args.s3Region = values['s3-region'];
  const connections = positiveInt('connections', values.connections, 1, 64);
  if (connections !== undefined) args.connections = connections;
  if (values['state-dir'] !== undefined) args.stateDir = values['state-dir'];
  if (values['ignore-file'] !== undefined) args.ignoreFile = values['ignore-file'];
  if (values.path !== undefined) args.paths = values.path;
  const transfers = positiveInt('transfers', values.transfers);
  const operations = positiveInt('operations', values.operations);
  if (transfers !== undefined) args.transfers = transfers;
  if (operations !== undefined) args.operations = operations;
  if (maxDelete !== undefined) args.maxDelete = Number(maxDelete);
  const trashDays = positiveInt('trash-days', values['trash-days'], 0, 36500);
  if (trashDays !== undefined) args.trashDays = trashDays;
  return { kind: 'run', args };
}
