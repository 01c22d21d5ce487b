// Shared by the tests that run inside the VS Code extension host (mocha, TDD interface): the
// extension's contract and a way to declare suites.
//
// Why hostSuite() rather than mocha's globals and a top-level `import * as vscode from 'vscode'`:
// tsconfig.test.json compiles every test/**/*.ts into out/test/, and `npm test` runs
// `node --test out/test/`, which loads every file there. Outside the extension host there are no
// mocha globals and no 'vscode' module, so these files must load and do nothing. The build that
// really runs them is esbuild's, into out/vscode-suite/ (scripts/test-vscode.sh, .vscode-test.mjs).
// Mocha's types are kept out on purpose: they would add describe/it/test globals to every test file.
import type * as vscodeApi from 'vscode';

export type Vscode = typeof vscodeApi;

export const EXTENSION_ID = 'syncengine.syncengine';

/** Every command the extension contributes (category "SyncEngine"), with the titles the contract names. */
export const COMMANDS: Readonly<Record<string, string | undefined>> = {
  'syncengine.syncNow': 'Sync Now',
  'syncengine.preview': 'Preview Sync',
  'syncengine.upload': 'Upload',
  'syncengine.download': 'Download',
  'syncengine.diffWithRemote': 'Diff with Remote',
  'syncengine.pause': undefined,
  'syncengine.resume': undefined,
  'syncengine.cancel': undefined,
  'syncengine.toggleSyncOnSave': 'Toggle Sync on Save',
  'syncengine.resolveConflict': undefined,
  'syncengine.openRemoteFolder': undefined,
  'syncengine.showLog': 'Show Log',
  'syncengine.createConfig': 'Create Config',
  'syncengine.importSftpJson': undefined,
  'syncengine.clearState': undefined,
};

/** What activate() returns, as far as the tests rely on it. */
export interface SyncEngineApi {
  syncNow(folder?: string): Promise<unknown>;
  state(): { syncOnSave: boolean; status: string; conflicts: number; targets: string[]; configErrors: string[] };
  /** Resolves when no run is in progress or queued. */
  idle(): Promise<void>;
  activationMs: number;
  activationSteps?: string[];
}

/** The part of mocha's test context the tests use. */
export interface TestContext {
  timeout(ms: number): void;
  skip(): never;
}
type Body = (this: TestContext) => void | Promise<void>;

export interface SuiteTools {
  vscode: Vscode;
  test(title: string, body: Body): void;
  suiteSetup(body: Body): void;
  suiteTeardown(body: Body): void;
}

interface MochaTddGlobals {
  suite(title: string, define: () => void): void;
  test(title: string, body: Body): void;
  suiteSetup(body: Body): void;
  suiteTeardown(body: Body): void;
}

/** Declares a mocha suite when loaded by mocha in the extension host; does nothing anywhere else. */
export function hostSuite(title: string, define: (tools: SuiteTools) => void): void {
  const g = globalThis as unknown as Partial<MochaTddGlobals>;
  if (typeof g.suite !== 'function' || typeof g.test !== 'function') return;
  let vscode: Vscode;
  try {
    vscode = require('vscode') as Vscode;
  } catch {
    return; // mocha, but not in an extension host
  }
  const m = g as MochaTddGlobals;
  m.suite(title, () =>
    define({
      vscode,
      test: (t, body) => m.test(t, body),
      suiteSetup: (body) => m.suiteSetup(body),
      suiteTeardown: (body) => m.suiteTeardown(body),
    }),
  );
}

/** The extension, activated; throws with a useful message when it is missing. */
export async function activeExtension(vscode: Vscode): Promise<vscodeApi.Extension<unknown>> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) {
    const ids = vscode.extensions.all.map((e) => e.id).filter((id) => !id.startsWith('vscode.'));
    throw new Error(`extension ${EXTENSION_ID} is not installed (non-builtin extensions: ${ids.join(', ') || 'none'})`);
  }
  if (!ext.isActive) await ext.activate();
  return ext;
}
