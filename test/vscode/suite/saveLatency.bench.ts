// Figures, not a test (bench/extension.mjs with WITH_VSCODE=1): activate() inside the real VS Code
// and the save-to-remote latency on a warm SFTP connection. Loaded by the in-host runner only when
// SYNCENGINE_VSCODE_BENCH_OUT names the file for the figures (index.ts), and then alone.
//
// One latency: TextDocument.save() of an edited file until its new content is in the file on the
// sshd's disk, polled every millisecond. The first saves warm up (connection opened by the first sync,
// code paths compiled) and are left out.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { hostSuite } from './host';
import { remoteDisk, uniquePath, workspace } from './fixtures';

const WARM_UP = 5;
const MEASURED = 40;
const POLL_LIMIT_MS = 10_000;

hostSuite('SyncEngine figures (in the extension host)', ({ vscode, test }) => {
  const remote = remoteDisk();
  const out = process.env.SYNCENGINE_VSCODE_BENCH_OUT;

  test('activation time and save-to-remote latency on a warm SFTP connection', async function () {
    if (!remote || !out) this.skip();
    this.timeout(300_000);
    const ws = await workspace(vscode);
    const rel = uniquePath('bench', 'save-latency');
    ws.write(rel, 'version 0\n');
    await ws.api.syncNow();
    assert.equal(remote!.read(rel), 'version 0\n', 'the first sync did not put the file on the server');

    const doc = await vscode.workspace.openTextDocument(ws.uri(rel));
    const editor = await vscode.window.showTextDocument(doc);
    const latencies: number[] = [];
    // Also from VS Code's save event on: the part that is ours (the rest is VS Code writing the file).
    const fromEvent: number[] = [];
    let savedAt = 0;
    const listener = vscode.workspace.onDidSaveTextDocument((d) => {
      if (d.uri.toString() === doc.uri.toString()) savedAt = performance.now();
    });
    for (let i = 1; i <= WARM_UP + MEASURED; i++) {
      const body = `version ${i}\n${'x'.repeat(i * 7)}\n`;
      const whole = new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length));
      assert.ok(await editor.edit((e) => e.replace(whole, body)), `edit ${i} was not applied`);
      const t0 = performance.now();
      assert.ok(await doc.save(), `save ${i} failed`);
      for (;;) {
        if (remote!.read(rel) === body) break;
        if (performance.now() - t0 > POLL_LIMIT_MS) throw new Error(`save ${i}: the new content was not on the server within ${POLL_LIMIT_MS / 1000} s`);
        // A 1 ms timer, not setImmediate: a busy loop in this process would compete with the very
        // extension it measures (same thread, and one of the machine's two cores).
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const now = performance.now();
      if (i > WARM_UP) {
        latencies.push(now - t0);
        if (savedAt >= t0) fromEvent.push(now - savedAt);
      }
      await ws.api.idle(); // the next save starts from a quiet session, as a person's next save would
    }
    listener.dispose();
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    const figures = { activationMs: ws.api.activationMs, activationSteps: ws.api.activationSteps ?? [], saveLatencyMs: latencies, saveEventToRemoteMs: fromEvent, vscodeVersion: vscode.version, hostNode: process.version };
    fs.writeFileSync(out, JSON.stringify(figures, null, 2));
  });
});
