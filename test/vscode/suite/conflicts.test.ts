// Conflicts settled with the commands the diff editor's title bar and the Sync view call
// (syncengine.acceptLocal / acceptRemote / keepBoth with the local file's Uri), against the real SFTP
// server. The workspace's target has "conflict": "manual", so a file changed on both sides stays a
// conflict until one of these commands settles it; the losing version must stay recoverable.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostSuite } from './host';
import { command, remoteDisk, trashed, uniquePath, workspace, type RemoteDisk, type Workspace } from './fixtures';

interface Conflict {
  rel: string;
  local: string;
  server: string;
}

hostSuite('SyncEngine conflicts (in the extension host)', ({ vscode, test }) => {
  const remote = remoteDisk();

  /**
   * A file synced once, then changed on both sides, then Sync Now: a conflict, handed to `body`. When
   * `body` fails, the file is removed on both sides and synced, so no conflict is left for later tests.
   */
  async function withConflict(stem: string, newer: 'local' | 'remote', body: (ws: Workspace, disk: RemoteDisk, c: Conflict) => Promise<void>): Promise<void> {
    const ws = await workspace(vscode);
    const disk = remote!;
    const rel = uniquePath('conflicts', stem);
    try {
      ws.write(rel, 'base\n');
      await ws.api.syncNow();
      assert.equal(disk.read(rel), 'base\n', `${rel} was not synced first`);
      const local = `changed locally (${stem})\n`;
      const server = `changed on the server (${stem}), longer\n`;
      // Modification times 10 s apart (the engine takes 2 s apart as the same time).
      ws.write(rel, local, newer === 'local' ? 12_000 : 2000);
      disk.write(rel, server, newer === 'remote' ? 12_000 : 2000);
      const before = ws.api.state().conflicts;
      await ws.api.syncNow();
      assert.equal(ws.api.state().conflicts, before + 1, `state(): ${JSON.stringify(ws.api.state())}`);
      assert.match(ws.api.state().status, /conflict/, 'the status bar shows the conflicts');
      assert.equal(ws.read(rel), local, 'the local file was overwritten');
      assert.equal(disk.read(rel), server, "the server's file was overwritten");
      await body(ws, disk, { rel, local, server });
    } catch (error) {
      fs.rmSync(ws.file(rel), { force: true });
      fs.rmSync(path.join(disk.dir, ...rel.split('/')), { force: true });
      await ws.api.syncNow();
      throw error;
    }
  }

  test('acceptLocal(Uri): the local version goes to the server, the server version to its trash', async function () {
    if (!remote) this.skip();
    await withConflict('accept-local', 'remote', async (ws, disk, c) => {
      const before = ws.api.state().conflicts;
      const settled = await command<boolean>(vscode, 'syncengine.acceptLocal', ws.uri(c.rel));
      assert.equal(settled, true);
      assert.equal(disk.read(c.rel), c.local);
      assert.equal(ws.read(c.rel), c.local);
      assert.equal(ws.api.state().conflicts, before - 1);
      assert.ok(trashed(disk.dir, c.rel).includes(c.server), `the server version is not in the server's trash: ${JSON.stringify(trashed(disk.dir, c.rel))}`);
    });
  });

  test('acceptRemote(Uri): the server version comes to the workspace, the local version to the local trash', async function () {
    if (!remote) this.skip();
    await withConflict('accept-remote', 'local', async (ws, disk, c) => {
      const before = ws.api.state().conflicts;
      const settled = await command<boolean>(vscode, 'syncengine.acceptRemote', ws.uri(c.rel));
      assert.equal(settled, true);
      assert.equal(ws.read(c.rel), c.server);
      assert.equal(disk.read(c.rel), c.server);
      assert.equal(ws.api.state().conflicts, before - 1);
      assert.ok(trashed(ws.folder.uri.fsPath, c.rel).includes(c.local), `the local version is not in the local trash: ${JSON.stringify(trashed(ws.folder.uri.fsPath, c.rel))}`);
    });
  });

  test('keepBoth(Uri): the newer version keeps the name on both sides, the other is kept beside it as a .conflict- copy', async function () {
    if (!remote) this.skip();
    await withConflict('keep-both', 'remote', async (ws, disk, c) => {
      const before = ws.api.state().conflicts;
      const settled = await command<boolean>(vscode, 'syncengine.keepBoth', ws.uri(c.rel));
      assert.equal(settled, true);
      assert.equal(ws.api.state().conflicts, before - 1);
      const stem = path.basename(c.rel, '.txt');
      for (const [side, root] of [['local', ws.folder.uri.fsPath], ['server', disk.dir]] as const) {
        const dir = path.join(root, path.dirname(c.rel));
        const copies = fs.readdirSync(dir).filter((n) => n.startsWith(`${stem}.conflict-`));
        assert.equal(copies.length, 1, `${side}: conflict copies of ${c.rel}: ${JSON.stringify(fs.readdirSync(dir))}`);
        assert.match(copies[0]!, /\.conflict-source-\d{8}-\d{6}\.txt$/, `${side}: the local version lost (the server's was newer)`);
        assert.equal(fs.readFileSync(path.join(root, ...c.rel.split('/')), 'utf8'), c.server, `${side}: ${c.rel} should hold the newer (server) version`);
        assert.equal(fs.readFileSync(path.join(dir, copies[0]!), 'utf8'), c.local, `${side}: the copy should hold the local version`);
      }
    });
  });

  test('saving the config without changing a setting keeps the target: its conflict is still listed', async function () {
    if (!remote) this.skip();
    await withConflict('config-resave', 'remote', async (ws, _disk, c) => {
      const before = ws.api.state().conflicts;
      const configUri = ws.uri('.vscode/syncengine.json');
      const original = fs.readFileSync(configUri.fsPath, 'utf8');
      try {
        // A comment changes the text, not the settings; then the original text again. Each write
        // reaches the extension's watcher, often as several events.
        await vscode.workspace.fs.writeFile(configUri, Buffer.from(`// a comment added by the test\n${original}`));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.equal(ws.api.state().conflicts, before, 'a save of the config with the same settings dropped the conflict');
      } finally {
        await vscode.workspace.fs.writeFile(configUri, Buffer.from(original));
        await new Promise((resolve) => setTimeout(resolve, 1500));
      }
      assert.equal(ws.api.state().conflicts, before, 'writing the config back dropped the conflict');
      assert.deepEqual(ws.api.state().targets, ['server']);
      assert.equal(await command<boolean>(vscode, 'syncengine.acceptLocal', ws.uri(c.rel)), true);
    });
  });
});
