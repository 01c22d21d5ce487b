// A real sync from inside the extension host, through the API activate() returns, against the
// SFTP server the driver started (test/vscode/ui.mjs: a real sshd, the workspace's
// .vscode/syncengine.json points at it). The driver passes the server's folder on disk in
// SYNCENGINE_TEST_REMOTE_DIR; without it (e.g. `npx vscode-test` on a desktop) these tests skip.
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { activeExtension, hostSuite, type SyncEngineApi } from './host';

hostSuite('SyncEngine sync through the API (in the extension host)', ({ vscode, test }) => {
  const remoteDir = process.env.SYNCENGINE_TEST_REMOTE_DIR;

  test('syncNow() uploads a file created in the workspace to the SFTP server', async function () {
    if (!remoteDir) this.skip();
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'no workspace folder open');
    const api = (await activeExtension(vscode)).exports as SyncEngineApi;

    const rel = `from-host/note-${randomBytes(4).toString('hex')}.txt`;
    const body = `written in the extension host at ${new Date().toISOString()}\n`;
    await vscode.workspace.fs.writeFile(vscode.Uri.joinPath(folder.uri, ...rel.split('/')), Buffer.from(body));

    await api.syncNow(); // the only workspace folder

    const remote = path.join(remoteDir!, ...rel.split('/'));
    assert.ok(fs.existsSync(remote), `${remote} is not on the server after syncNow()`);
    assert.equal(fs.readFileSync(remote, 'utf8'), body);
  });

  test('state() reports no conflicts after a clean sync', async function () {
    if (!remoteDir) this.skip();
    const api = (await activeExtension(vscode)).exports as SyncEngineApi;
    const state = api.state();
    assert.equal(state.conflicts, 0, `state(): ${JSON.stringify(state)}`);
  });
});
