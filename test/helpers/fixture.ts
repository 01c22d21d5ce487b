// Real folders for scenario tests, and the CLI run in-process or as a child process.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

export class Fixture {
  readonly root: string;
  readonly src: string;
  readonly dst: string;

  constructor(name = 'syncengine-test') {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    this.src = path.join(this.root, 'src');
    this.dst = path.join(this.root, 'dst');
    fs.mkdirSync(this.src);
    fs.mkdirSync(this.dst);
  }

  write(side: 'src' | 'dst', rel: string, content: string | Buffer, mtimeMs?: number): void {
    const file = path.join(this[side], rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    if (mtimeMs !== undefined) fs.utimesSync(file, new Date(), new Date(mtimeMs));
  }

  read(side: 'src' | 'dst', rel: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this[side], rel), 'utf8');
    } catch {
      return undefined;
    }
  }

  remove(side: 'src' | 'dst', rel: string): void {
    fs.rmSync(path.join(this[side], rel), { recursive: true, force: true });
  }

  /** Every file of a side (engine folders left out), path → content. */
  files(side: 'src' | 'dst'): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string, rel: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.name.startsWith('.syncengine') || e.name.startsWith('.sync_state')) continue;
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(path.join(dir, e.name), r);
        else out[r] = fs.readFileSync(path.join(dir, e.name), 'utf8');
      }
    };
    walk(this[side], '');
    return out;
  }

  /** Contents of every file in a side's trash, keyed by the original path. */
  trash(side: 'src' | 'dst'): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    const trashRoot = path.join(this[side], '.syncengine-trash');
    if (!fs.existsSync(trashRoot)) return out;
    for (const run of fs.readdirSync(trashRoot)) {
      const walk = (dir: string, rel: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) walk(path.join(dir, e.name), r);
          else (out[r] ??= []).push(fs.readFileSync(path.join(dir, e.name), 'utf8'));
        }
      };
      walk(path.join(trashRoot, run), '');
    }
    return out;
  }

  /** Run the CLI in this process. */
  async cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: Record<string, any> | undefined }> {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } });
    let json: Record<string, any> | undefined;
    if (args.includes('--json')) {
      try {
        json = JSON.parse(stdout) as Record<string, any>;
      } catch {
        json = undefined;
      }
    }
    return { code, stdout, stderr, json };
  }

  /** `syncengine sync src dst --json ...` in this process. */
  sync(...extra: string[]) {
    return this.cli('sync', this.src, this.dst, '--json', ...extra);
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Run the bundled CLI as a child process. */
export function runCliProcess(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
