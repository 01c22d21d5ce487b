// What the in-host tests share beyond the contract in host.ts: the workspace folder, the SFTP
// server's folder on disk (the driver passes it, with the login user's uid/gid, in the extension
// host's environment), commands with a time limit, waiting. Loaded by `node --test` too (see
// host.ts): no top-level 'vscode' import, nothing happens at load time.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscodeApi from 'vscode';
import { activeExtension, type SyncEngineApi, type Vscode } from './host';

/** The server side of the sync pair, on this machine's disk: undefined outside scripts/test-vscode.sh. */
export interface RemoteDisk {
  dir: string;
  read(rel: string): string | undefined;
  /** Writes as the SFTP login user would: owned by that user, with a modification time `ageMs` from now. */
  write(rel: string, body: string, ageMs?: number): void;
}

export function remoteDisk(): RemoteDisk | undefined {
  const dir = process.env.SYNCENGINE_TEST_REMOTE_DIR;
  if (!dir) return undefined;
  const uid = Number(process.env.SYNCENGINE_TEST_REMOTE_UID ?? -1);
  const gid = Number(process.env.SYNCENGINE_TEST_REMOTE_GID ?? -1);
  const chown = (p: string) => {
    if (uid >= 0 && gid >= 0) fs.chownSync(p, uid, gid);
  };
  return {
    dir,
    read: (rel) => readIf(path.join(dir, ...rel.split('/'))),
    write(rel, body, ageMs = 0) {
      const file = path.join(dir, ...rel.split('/'));
      // Folders created on the way belong to the login user too.
      const parts = rel.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const d = path.join(dir, ...parts.slice(0, i));
        if (!fs.existsSync(d)) {
          fs.mkdirSync(d);
          chown(d);
        }
      }
      fs.writeFileSync(file, body);
      chown(file);
      const t = new Date(Date.now() + ageMs);
      fs.utimesSync(file, t, t);
    },
  };
}

export function readIf(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A name no other test uses: `<folder>/<stem>-<random><ext>`. */
export function uniquePath(folder: string, stem: string, ext = '.txt'): string {
  return `${folder}/${stem}-${randomBytes(4).toString('hex')}${ext}`;
}

export interface Workspace {
  folder: vscodeApi.WorkspaceFolder;
  api: SyncEngineApi;
  uri(rel: string): vscodeApi.Uri;
  file(rel: string): string;
  read(rel: string): string | undefined;
  write(rel: string, body: string, ageMs?: number): void;
}

export async function workspace(vscode: Vscode): Promise<Workspace> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'no workspace folder open');
  const api = (await activeExtension(vscode)).exports as SyncEngineApi;
  const file = (rel: string) => path.join(folder.uri.fsPath, ...rel.split('/'));
  return {
    folder,
    api,
    uri: (rel) => vscode.Uri.joinPath(folder.uri, ...rel.split('/')),
    file,
    read: (rel) => readIf(file(rel)),
    write(rel, body, ageMs = 0) {
      fs.mkdirSync(path.dirname(file(rel)), { recursive: true });
      fs.writeFileSync(file(rel), body);
      const t = new Date(Date.now() + ageMs);
      fs.utimesSync(file(rel), t, t);
    },
  };
}

/** The contents of the copies of `rel` in a side's trash (`<root>/.syncengine-trash/<run>/<rel>[.n]`). */
export function trashed(root: string, rel: string): string[] {
  const trash = path.join(root, '.syncengine-trash');
  if (!fs.existsSync(trash)) return [];
  const name = path.basename(rel);
  const out: string[] = [];
  for (const run of fs.readdirSync(trash)) {
    const dir = path.join(trash, run, path.dirname(rel));
    if (!fs.existsSync(dir)) continue;
    for (const n of fs.readdirSync(dir)) if (n === name || n.startsWith(`${name}.`)) out.push(fs.readFileSync(path.join(dir, n), 'utf8'));
  }
  return out;
}

/**
 * Runs a command with a time limit. A command of this extension that fails shows an error
 * notification and waits for it to be dismissed before it returns: without a limit a failure would
 * only show as mocha's timeout.
 */
export async function command<T>(vscode: Vscode, id: string, ...args: unknown[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(vscode.commands.executeCommand<T>(id, ...args)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${id} did not return within 40 s (an error notification waiting to be dismissed? see the SyncEngine log)`)), 40_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
