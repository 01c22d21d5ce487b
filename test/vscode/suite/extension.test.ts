// Smoke tests of the installed extension inside the extension host: it is there, it activates,
// its commands are registered and contributed, and activate() returns the test API.
import * as assert from 'node:assert/strict';
import { COMMANDS, EXTENSION_ID, activeExtension, hostSuite, type SyncEngineApi } from './host';

hostSuite('SyncEngine extension (in the extension host)', ({ vscode, test }) => {
  test('is installed with the expected manifest', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not installed`);
    const manifest = ext.packageJSON as { main?: string; activationEvents?: string[] };
    assert.equal(manifest.main?.replace(/^\.\//, ''), 'dist/extension.js');
    assert.ok(manifest.activationEvents?.includes('onStartupFinished'), `activationEvents: ${JSON.stringify(manifest.activationEvents)}`);
    assert.ok(
      manifest.activationEvents?.includes('workspaceContains:.vscode/syncengine.json'),
      `activationEvents: ${JSON.stringify(manifest.activationEvents)}`,
    );
  });

  test('activates', async () => {
    const ext = await activeExtension(vscode);
    assert.equal(ext.isActive, true);
  });

  test('registers every command', async () => {
    await activeExtension(vscode);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = Object.keys(COMMANDS).filter((id) => !registered.has(id));
    assert.deepEqual(missing, [], `commands not registered: ${missing.join(', ')}`);
  });

  test('contributes every command in the "SyncEngine" category with its title', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    const contributed = ((ext.packageJSON as { contributes?: { commands?: { command: string; title: string; category?: string }[] } })
      .contributes?.commands ?? []);
    const byId = new Map(contributed.map((c) => [c.command, c]));
    for (const [id, title] of Object.entries(COMMANDS)) {
      const c = byId.get(id);
      assert.ok(c, `${id} is not in contributes.commands`);
      assert.equal(c.category, 'SyncEngine', `${id} category`);
      if (title !== undefined) assert.equal(c.title, title, `${id} title`);
    }
  });

  test('activate() returns the test API (syncNow, state, idle)', async () => {
    const ext = await activeExtension(vscode);
    const api = ext.exports as Partial<SyncEngineApi> | undefined;
    assert.ok(api, 'activate() returned nothing');
    assert.equal(typeof api.syncNow, 'function', 'api.syncNow');
    assert.equal(typeof api.state, 'function', 'api.state');
    const state = api.state!();
    assert.equal(typeof state.syncOnSave, 'boolean', `state(): ${JSON.stringify(state)}`);
    assert.equal(typeof state.status, 'string', `state(): ${JSON.stringify(state)}`);
    assert.equal(typeof state.conflicts, 'number', `state(): ${JSON.stringify(state)}`);
    assert.ok(Array.isArray(state.targets) && Array.isArray(state.configErrors), `state(): ${JSON.stringify(state)}`);
    assert.equal(typeof api.idle, 'function', 'api.idle');
    await api.idle!();
  });
});
