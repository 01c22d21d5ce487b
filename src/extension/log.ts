// The log: one LogOutputChannel ("SyncEngine") that every part of the extension writes to.
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function log(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('SyncEngine', { log: true });
  return channel;
}

export function disposeLog(): void {
  channel?.dispose();
  channel = undefined;
}

/** An error notification with a "Show Log" action; the full message also goes to the log. */
export async function showError(message: string): Promise<void> {
  log().error(message);
  const choice = await vscode.window.showErrorMessage(message, 'Show Log');
  if (choice === 'Show Log') log().show(true);
}
