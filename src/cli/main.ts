// The `syncengine` command: a thin shell over the engine.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { openBackend, type ConnectOptions } from '../backends/registry';
import type { Backend } from '../backends/types';
import { parseTarget } from '../config/target';
import { SyncController } from '../core/control';
import { runSync, type SyncResult } from '../core/engine';
import { GuardError, SyncError, UsageError, errorMessage } from '../core/errors';
import { StateStore, pairId } from '../core/state';
import { LocalBackend } from '../backends/local';
import { letTreeWalksBlockThisThread } from '../backends/localTree';
import { parseCommandLine, USAGE, type CliArgs } from './args';
import { promptOnTerminal } from './prompt';
import { ProgressLine, describeItem, humanSummary, jsonSummary } from './output';

declare const SYNCENGINE_VERSION: string | undefined;

export const EXIT = { ok: 0, error: 1, usage: 2, conflicts: 3, guard: 4 } as const;

function version(): string {
  return typeof SYNCENGINE_VERSION === 'string' ? SYNCENGINE_VERSION : 'dev';
}

function readIgnoreFile(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split(/\r?\n/);
  } catch (error) {
    throw new UsageError(`Cannot read the ignore file ${file}: ${errorMessage(error)}`);
  }
}

interface Pair {
  source: Backend;
  destination: Backend;
  stateDir: string;
}

/** Where the state of a pair lives when the source is not a local folder. */
function defaultStateRoot(): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'syncengine');
}

function connectOptions(args: CliArgs, io: CliIO): ConnectOptions {
  const options: ConnectOptions = {
    prompt: promptOnTerminal,
    warn: (message) => io.stderr.write(`syncengine: warning: ${message}\n`),
  };
  // Secrets come from the environment or a prompt, never from the command line.
  if (process.env.SYNCENGINE_PASSWORD) options.password = process.env.SYNCENGINE_PASSWORD;
  if (process.env.SYNCENGINE_PASSPHRASE) options.passphrase = process.env.SYNCENGINE_PASSPHRASE;
  if (args.keyFile) options.keyFile = path.resolve(args.keyFile);
  if (args.knownHosts) options.knownHostsFile = path.resolve(args.knownHosts);
  if (args.acceptHostKey) options.acceptHostKey = args.acceptHostKey;
  if (args.ftpsImplicit) options.ftpsImplicit = true;
  if (args.allowUntrustedCert) options.allowUntrustedCertificate = true;
  if (args.s3Endpoint) options.s3Endpoint = args.s3Endpoint;
  if (args.s3Region) options.s3Region = args.s3Region;
  if (args.s3PathStyle) options.s3PathStyle = true;
  if (args.connections) options.connections = args.connections;
  return options;
}

/** Check both targets, connect, and find the state folder; refuse a missing source or a missing known destination. */
async function openPair(args: CliArgs, io: CliIO): Promise<Pair> {
  const source = parseTarget(args.source, 'source');
  const destination = parseTarget(args.destination, 'destination');
  const isDir = (p: string) => {
    try {
      return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
    } catch {
      return false; // ENOTDIR (a file above it), EACCES: not a folder we can use
    }
  };
  if (source.kind === 'local' && !isDir(source.path)) throw new UsageError(`The source folder ${source.path} does not exist (or is not a folder)`);
  if (source.kind === 'local' && destination.kind === 'local') {
    if (source.path === destination.path) throw new UsageError('The source and the destination are the same folder');
    const inside = (a: string, b: string) => a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
    if (inside(destination.path, source.path) || inside(source.path, destination.path)) {
      throw new UsageError('The source and the destination must not be inside one another');
    }
  }
  const options = connectOptions(args, io);
  const sourceBackend = await openBackend(source, options);
  let destinationBackend: Backend;
  try {
    destinationBackend = await openBackend(destination, options);
  } catch (error) {
    await sourceBackend.close().catch(() => undefined);
    throw error;
  }
  const stateRoot = args.stateDir ? path.resolve(args.stateDir) : source.kind === 'local' ? path.join(source.path, '.sync_state') : defaultStateRoot();
  const stateDir = path.join(stateRoot, pairId(sourceBackend.id, destinationBackend.id));
  const hasState = StateStore.hasState(stateDir);
  if (destination.kind === 'local' && !isDir(destination.path)) {
    if (hasState) {
      await Promise.all([sourceBackend.close(), destinationBackend.close()]);
      throw new UsageError(`The destination folder ${destination.path} does not exist, although this pair was synced before. If it moved, give its new path; to start over, run "syncengine clear".`);
    }
    // plan and status show what a first sync would do: against an empty folder, creating nothing.
    if (args.command !== 'sync') destinationBackend = new LocalBackend(destination.path, { missingRootIsEmpty: true });
  }
  // A first sync creates the destination folder; later ones expect it (a missing one is an error
  // from the listing, and the empty-side guard stands behind that).
  if (!hasState && args.command === 'sync') {
    try {
      // A run that cannot keep its state must not create the destination either.
      StateStore.makeFolder(stateDir);
      await destinationBackend.mkdir('');
    } catch (error) {
      // Open connections would keep the process alive after the error is printed.
      await Promise.all([sourceBackend.close(), destinationBackend.close()]).catch(() => undefined);
      throw error;
    }
  }
  return { source: sourceBackend, destination: destinationBackend, stateDir };
}

function exitCodeFor(result: SyncResult): number {
  if (result.stats.errors.length > 0) return EXIT.error;
  if (result.stats.conflicts.length > 0) return EXIT.conflicts;
  return EXIT.ok;
}

export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
}

export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let args: CliArgs | undefined;
  const fail = (code: number, error: unknown): number => {
    const message = errorMessage(error);
    if (args?.json ?? argv.includes('--json')) io.stdout.write(JSON.stringify({ error: { type: error instanceof Error ? error.name : 'Error', message }, exitCode: code }) + '\n');
    io.stderr.write(`syncengine: ${message}\n`);
    if (code === EXIT.usage && !(error instanceof SyncError && !(error instanceof UsageError))) io.stderr.write('Run "syncengine --help" for usage.\n');
    return code;
  };
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      io.stdout.write(USAGE + '\n');
      return EXIT.ok;
    }
    if (parsed.kind === 'version') {
      io.stdout.write(`syncengine ${version()}\n`);
      return EXIT.ok;
    }
    args = parsed.args;
    // Before connecting or creating anything: a bad ignore file is a usage error that changes nothing.
    const ignorePatterns = args.ignoreFile ? readIgnoreFile(args.ignoreFile) : [];
    const pair = await openPair(args, io);
    try {
      return await runCommand(args, pair, io, ignorePatterns);
    } finally {
      await Promise.all([pair.source.close(), pair.destination.close()]).catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof UsageError) return fail(EXIT.usage, error);
    if (error instanceof GuardError) return fail(EXIT.guard, error);
    return fail(EXIT.error, error);
  }
}

async function runCommand(args: CliArgs, pair: Pair, io: CliIO, ignorePatterns: string[]): Promise<number> {
    if (args.command === 'clear') {
      new StateStore(pair.stateDir, { source: pair.source.id, destination: pair.destination.id }).clear();
      if (args.json) io.stdout.write(JSON.stringify({ command: 'clear', stateDir: pair.stateDir, exitCode: 0 }) + '\n');
      else io.stdout.write(`Forgot the sync state of this pair (${pair.stateDir}); the next sync compares everything.\n`);
      return EXIT.ok;
    }
    const dryRun = args.command !== 'sync';
    const controller = new SyncController();
    const progress = !args.quiet && !args.json && io.stderr.isTTY ? new ProgressLine(io.stderr) : undefined;
    const onSigint = () => (controller.cancelled ? process.exit(130) : controller.cancel());
    const onPause = () => controller.pause();
    const onResume = () => controller.resume();
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    process.on('SIGUSR1', onPause);
    process.on('SIGUSR2', onResume);
    let result: SyncResult;
    try {
      result = await runSync({
        source: pair.source,
        destination: pair.destination,
        stateDir: pair.stateDir,
        options: args.options,
        ignorePatterns,
        ...(args.paths ? { scope: args.paths } : {}),
        limits: { ...(args.transfers ? { transfers: args.transfers } : {}), ...(args.operations ? { operations: args.operations } : {}) },
        ...(args.maxDelete !== undefined ? { maxDeletePercent: args.maxDelete } : {}),
        ...(args.trashDays !== undefined ? { trashRetentionDays: args.trashDays } : {}),
        force: args.force,
        dryRun,
        controller,
        ...(progress ? { onEvent: (e) => progress.handle(e) } : {}),
      });
    } finally {
      progress?.clear();
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      process.off('SIGUSR1', onPause);
      process.off('SIGUSR2', onResume);
    }
    let code = exitCodeFor(result);
    if (result.stats.cancelled && code === EXIT.ok) code = EXIT.error;
    if (args.json) {
      io.stdout.write(JSON.stringify(jsonSummary(args.command, args.source, args.destination, result, code, dryRun)) + '\n');
    } else {
      if (args.command === 'plan') for (const item of result.plan.items) io.stdout.write(describeItem(item) + '\n');
      io.stdout.write(humanSummary(result, dryRun) + '\n');
    }
    return code;
}

/** A reader that stopped reading (`syncengine plan … | head`) is not an error: the run is over by the time output is written. */
function ignoreClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') return;
    throw error;
  });
}

if (require.main === module || process.env.SYNCENGINE_FORCE_MAIN) {
  ignoreClosedPipe(process.stdout);
  letTreeWalksBlockThisThread(); // nothing else runs on this thread while a sync lists its folders
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`syncengine: ${errorMessage(error)}\n`);
      process.exitCode = EXIT.error;
    },
  );
}
