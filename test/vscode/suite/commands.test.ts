// The commands that act on one resource, called the way the Explorer and editor menus call them
// (with a Uri), against the real SFTP server the driver started; and the remote file system that
// diff editors read. See fixtures.ts for how the server's folder is reached on disk.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostSuite } from './host';
import { command, remoteDisk, trashed, uniquePath, waitFor, workspace } from './fixtures';

hostSuite('SyncEngine commands with a Uri (in the extension host)', ({ vscode, test }) => {
  const remote = remoteDisk();

  test('Upload (a file Uri) puts that file on the server and nothing else', async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const rel = uniquePath('upload', 'chosen');
    const other = rel.replace('chosen', 'not-chosen');
    ws.write(rel, 'uploaded on its own\n');
    ws.write(other, 'stays local\n');

    await command(vscode, 'syncengine.upload', ws.uri(rel));

    assert.equal(remote!.read(rel), 'uploaded on its own\n');
    assert.equal(remote!.read(other), undefined, `${other} was uploaded too: Upload of one file must not sync its neighbours`);
  });

  test('Upload of a file changed on the server replaces it there; the server copy goes to its trash', async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const rel = uniquePath('upload', 'replace');
    ws.write(rel, 'first\n');
    await command(vscode, 'syncengine.upload', ws.uri(rel));
    remote!.write(rel, 'changed on the server\n', 2000);
    ws.write(rel, 'the local one wins\n', 4000);

    await command(vscode, 'syncengine.upload', ws.uri(rel));

    assert.equal(remote!.read(rel), 'the local one wins\n');
    assert.ok(trashed(remote!.dir, rel).includes('changed on the server\n'), `the replaced server copy is not in the server's trash: ${JSON.stringify(trashed(remote!.dir, rel))}`);
  });

  test("Download (a file Uri) brings the server's version; the replaced local version goes to the local trash", async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const rel = uniquePath('download', 'file');
    ws.write(rel, 'local before\n');
    await command(vscode, 'syncengine.upload', ws.uri(rel));
    remote!.write(rel, 'newer on the server\n', 2000);

    await command(vscode, 'syncengine.download', ws.uri(rel));

    assert.equal(ws.read(rel), 'newer on the server\n');
    assert.ok(trashed(ws.folder.uri.fsPath, rel).includes('local before\n'), `the replaced local version is not in the local trash: ${JSON.stringify(trashed(ws.folder.uri.fsPath, rel))}`);
  });

  test('Download (a folder Uri) brings files that exist only on the server, deleting nothing locally', async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const folder = uniquePath('download', 'folder', '');
    remote!.write(`${folder}/from-server.txt`, 'made on the server\n');
    ws.write(`${folder}/local-only.txt`, 'only here\n');

    await command(vscode, 'syncengine.download', ws.uri(folder));

    assert.equal(ws.read(`${folder}/from-server.txt`), 'made on the server\n');
    assert.equal(ws.read(`${folder}/local-only.txt`), 'only here\n', 'Download deleted a local file');
    assert.equal(remote!.read(`${folder}/local-only.txt`), undefined, 'Download uploaded something');
  });

  test("the remote file system (syncengine-remote:) reads the server's bytes", async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const rel = uniquePath('remote-fs', 'read');
    remote!.write(rel, 'read through the provider\n');
    const uri = vscode.Uri.from({
      scheme: 'syncengine-remote',
      path: `/${rel}`,
      query: new URLSearchParams({ folder: ws.folder.uri.fsPath, target: 'server' }).toString(),
    });
    const bytes = await vscode.workspace.fs.readFile(uri);
    assert.equal(Buffer.from(bytes).toString('utf8'), 'read through the provider\n');
    const stat = await vscode.workspace.fs.stat(uri);
    assert.equal(stat.type, vscode.FileType.File);
    assert.equal(stat.size, Buffer.byteLength('read through the provider\n'));
    await assert.rejects(Promise.resolve(vscode.workspace.fs.writeFile(uri, Buffer.from('x'))), /read-only|NoPermissions/i, 'the remote side must be read-only');
  });

  test('Diff with Remote (a file Uri) opens a diff: remote (syncengine-remote:) on the left, the local file on the right', async function () {
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const rel = uniquePath('diff', 'compare');
    ws.write(rel, 'local text\n');
    remote!.write(rel, 'remote text\n');

    try {
      await command(vscode, 'syncengine.diffWithRemote', ws.uri(rel));

      const tab = await waitFor('the diff tab', () =>
        vscode.window.tabGroups.all
          .flatMap((g) => g.tabs)
          .find((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === ws.uri(rel).toString()),
      );
      const input = tab.input as InstanceType<typeof vscode.TabInputTextDiff>;
      assert.equal(input.original.scheme, 'syncengine-remote');
      assert.match(tab.label, /↔ Local/);
      const left = await vscode.workspace.openTextDocument(input.original);
      assert.equal(left.getText(), 'remote text\n');
      await vscode.window.tabGroups.close(tab);
    } finally {
      // Different on both sides and never synced: the next full sync would make it a conflict.
      fs.rmSync(ws.file(rel), { force: true });
      fs.rmSync(path.join(remote!.dir, ...rel.split('/')), { force: true });
    }
  });

  test('Toggle Sync on Save flips state().syncOnSave and the status bar, and back', async () => {
    const ws = await workspace(vscode);
    const before = ws.api.state().syncOnSave;
    try {
      const now = await command<boolean>(vscode, 'syncengine.toggleSyncOnSave');
      assert.equal(now, !before);
      assert.equal(ws.api.state().syncOnSave, !before);
      if (before && ws.api.state().conflicts === 0) assert.match(ws.api.state().status, /Sync on save off/);
    } finally {
      if (ws.api.state().syncOnSave !== before) await command(vscode, 'syncengine.toggleSyncOnSave');
    }
    assert.equal(ws.api.state().syncOnSave, before);
  });
});
