// A read-only file system for the remote side of a pair, so that VS Code's own diff and merge
// editors can show the remote version of a file: syncengine-remote:/<path>?folder=<local folder>&target=<name>.
import * as vscode from 'vscode';
import type { SyncModel } from './model';
import type { TargetSession } from './targetSession';

export const REMOTE_SCHEME = 'syncengine-remote';

export function remoteUri(session: TargetSession, relPath: string): vscode.Uri {
  const query = new URLSearchParams({ folder: session.folder.uri.fsPath, target: session.name }).toString();
  return vscode.Uri.from({ scheme: REMOTE_SCHEME, path: `/${relPath}`, query });
}

export class RemoteFileSystemProvider implements vscode.FileSystemProvider {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  constructor(private readonly model: SyncModel) {}

  /** Tell open editors that the remote version may have changed (after a sync). */
  refresh(uris: vscode.Uri[]): void {
    if (uris.length) this.emitter.fire(uris.map((uri) => ({ type: vscode.FileChangeType.Changed, uri })));
  }

  private resolve(uri: vscode.Uri): { session: TargetSession; path: string } {
    const q = new URLSearchParams(uri.query);
    const session = this.model.find(q.get('folder') ?? '', q.get('target') ?? '');
    if (!session) throw vscode.FileSystemError.Unavailable(`No SyncEngine target "${q.get('target')}" for ${q.get('folder')}`);
    return { session, path: uri.path.replace(/^\/+/, '') };
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const { session, path } = this.resolve(uri);
    const backend = await session.backend();
    if (path === '') return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    const entry = await backend.stat(path);
    if (!entry) throw vscode.FileSystemError.FileNotFound(uri);
    return { type: entry.kind === 'dir' ? vscode.FileType.Directory : vscode.FileType.File, ctime: entry.mtimeMs, mtime: entry.mtimeMs, size: entry.size, permissions: vscode.FilePermission.Readonly };
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const { session, path } = this.resolve(uri);
    const backend = await session.backend();
    const listing = await backend.listDir(path);
    const base = path === '' ? '' : `${path}/`;
    return listing.entries.map((e): [string, vscode.FileType] => [e.path.slice(base.length), e.kind === 'dir' ? vscode.FileType.Directory : vscode.FileType.File]);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const { session, path } = this.resolve(uri);
    const backend = await session.backend();
    const entry = await backend.stat(path);
    if (!entry || entry.kind !== 'file') throw vscode.FileSystemError.FileNotFound(uri);
    const stream = await backend.read(path);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  createDirectory(): never {
    throw vscode.FileSystemError.NoPermissions('The remote side is read-only here: change the local file and sync.');
  }
  writeFile(): never {
    throw vscode.FileSystemError.NoPermissions('The remote side is read-only here: change the local file and sync.');
  }
  delete(): never {
    throw vscode.FileSystemError.NoPermissions('The remote side is read-only here.');
  }
  rename(): never {
    throw vscode.FileSystemError.NoPermissions('The remote side is read-only here.');
  }
}
