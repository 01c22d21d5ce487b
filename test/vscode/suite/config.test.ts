// A broken .vscode/syncengine.json: a diagnostic on the offending line (Problems panel), the error in
// state().configErrors as "file:line:col: problem", no targets, nothing syncs; fixing the file brings
// the target back. The original file is always restored (suiteTeardown), so the other suites keep
// their target even when a test here fails.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { hostSuite } from './host';
import { remoteDisk, uniquePath, waitFor, workspace } from './fixtures';

hostSuite('SyncEngine config errors (in the extension host)', ({ vscode, test, suiteTeardown }) => {
  const remote = remoteDisk();
  let original: string | undefined;
  let configFile: string | undefined;

  const restore = async () => {
    if (original === undefined || configFile === undefined) return;
    const ws = await workspace(vscode);
    await vscode.workspace.fs.writeFile(vscode.Uri.file(configFile), Buffer.from(original));
    await waitFor('the config loads again', () => ws.api.state().configErrors.length === 0 && ws.api.state().targets.length > 0, 20_000);
    // One write can reach the extension's file watcher as several events: let them pass before the
    // next suite syncs.
    await new Promise((resolve) => setTimeout(resolve, 1500));
  };
  suiteTeardown(async () => {
    await restore();
  });

  test('an unknown key: a diagnostic on its line, state().configErrors names file:line, no targets, nothing syncs', async function () {
    // Needs a working config to break and restore: the one the driver writes (with the SFTP server).
    if (!remote) this.skip();
    const ws = await workspace(vscode);
    const uri = ws.uri('.vscode/syncengine.json');
    configFile = uri.fsPath;
    original = fs.readFileSync(configFile, 'utf8');
    const config = JSON.parse(original) as { targets: { server: Record<string, unknown> } };
    const broken = JSON.stringify({ targets: { server: { url: config.targets.server.url, privateKey: config.targets.server.privateKey, knownHosts: config.targets.server.knownHosts, conflcit: 'manual' } } }, null, 2);
    // JSON.stringify puts one key per line: the misspelt key is on its own line, after the others.
    const line = broken.split('\n').findIndex((l) => l.includes('"conflcit"'));
    assert.ok(line > 3);

    await vscode.workspace.fs.writeFile(uri, Buffer.from(broken));

    await waitFor('the config error', () => ws.api.state().configErrors.length > 0, 20_000);
    const state = ws.api.state();
    assert.deepEqual(state.targets, []);
    assert.match(state.configErrors[0]!, new RegExp(`syncengine\\.json:${line + 1}:\\d+: .*conflcit`), `configErrors: ${JSON.stringify(state.configErrors)}`);
    assert.match(state.status, /SyncEngine/);

    const diagnostics = await waitFor('a diagnostic', () => {
      const d = vscode.languages.getDiagnostics(uri);
      return d.length > 0 ? d : undefined;
    });
    const d = diagnostics.find((x) => /conflcit/.test(x.message));
    assert.ok(d, `diagnostics: ${JSON.stringify(diagnostics.map((x) => x.message))}`);
    assert.equal(d.range.start.line, line, `the diagnostic is on line ${d.range.start.line + 1}, not ${line + 1}`);
    assert.equal(d.severity, vscode.DiagnosticSeverity.Error);
    assert.match(d.message, /did you mean "conflict"|unknown/i);

    // Nothing syncs while the file is broken.
    const rel = uniquePath('config', 'while-broken');
    ws.write(rel, 'must not be uploaded\n');
    await ws.api.syncNow();
    assert.equal(remote!.read(rel), undefined, 'a file was uploaded although the config is broken');
  });

  test('fixing the file clears the diagnostic and brings the target back', async function () {
    if (!remote || original === undefined) this.skip();
    const ws = await workspace(vscode);
    await restore();
    assert.deepEqual(ws.api.state().configErrors, []);
    assert.deepEqual(ws.api.state().targets, ['server']);
    await waitFor('the diagnostic gone', () => vscode.languages.getDiagnostics(ws.uri('.vscode/syncengine.json')).length === 0);
  });
});
