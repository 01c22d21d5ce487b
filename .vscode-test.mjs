// @vscode/test-cli configuration: `npx vscode-test` downloads VS Code desktop and runs the in-host
// mocha suite (test/vscode/suite/*.test.ts) against this folder as the extension under development.
// Needs a machine that can download VS Code (not the CI machines: there scripts/test-vscode.sh runs
// the same suite in code-server). Run `npm run build` first; the suite itself is built here, on load.
//
// The SFTP sync tests need SYNCENGINE_TEST_REMOTE_DIR (set by scripts/test-vscode.sh's driver, with a
// real sshd); without it they are skipped and the smoke tests (installed, active, commands, API) run.
import { defineConfig } from '@vscode/test-cli';
import { buildSync } from 'esbuild';
import { readdirSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
const suiteDir = join(here, 'test', 'vscode', 'suite');
buildSync({
  entryPoints: readdirSync(suiteDir).filter((n) => n.endsWith('.ts')).map((n) => join(suiteDir, n)),
  outdir: join(here, 'out', 'vscode-suite'),
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});

// A throwaway workspace holding a config, so that workspaceContains activation is exercised too
// (inside .vscode-test/, test-cli's own gitignored folder).
const workspace = join(here, '.vscode-test', 'workspace');
rmSync(workspace, { recursive: true, force: true });
mkdirSync(join(workspace, '.vscode'), { recursive: true });
// A valid config with a local-folder target (no server needed); syncOnSave off so the smoke tests
// change nothing outside .vscode-test/.
writeFileSync(join(workspace, '.vscode', 'syncengine.json'), JSON.stringify({ targets: { backup: { url: '../backup', syncOnSave: false } } }, null, 2) + '\n');
writeFileSync(join(workspace, 'README.md'), '# vscode-test workspace\n');

export default defineConfig({
  label: 'in-host',
  files: 'out/vscode-suite/**/*.test.js',
  version: 'stable',
  extensionDevelopmentPath: here,
  workspaceFolder: workspace,
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
  mocha: { ui: 'tdd', timeout: 60_000, slow: 10_000, color: true },
});
