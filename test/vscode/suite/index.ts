// Test-runner entry point loaded by the VS Code extension host (the test-electron model:
// --extensionTestsPath, or the `extensionTestsPath` of code-server's payload URL). VS Code calls
// run(); a rejected promise means failure. The results also go to a JSON file named by
// SYNCENGINE_VSCODE_RESULTS (when set), so the driver outside reads them even if the exit code is lost.
//
// Loaded by `node --test` too (see host.ts): nothing happens at load time.
import * as fs from 'node:fs';
import * as path from 'node:path';

interface TestLike {
  fullTitle(): string;
  duration?: number;
}
interface RunnerLike {
  on(event: 'pass' | 'pending', listener: (test: TestLike) => void): RunnerLike;
  on(event: 'fail', listener: (test: TestLike, error: unknown) => void): RunnerLike;
}
interface MochaLike {
  addFile(file: string): void;
  grep(pattern: RegExp): void;
  run(done: (failures: number) => void): RunnerLike;
}

interface Result {
  title: string;
  state: 'passed' | 'failed' | 'skipped';
  ms?: number;
  error?: string;
}

export function run(): Promise<void> {
  // mocha from the repository's node_modules (out/vscode-suite/ is inside the repository).
  const Mocha = require('mocha') as new (options: object) => MochaLike;
  const mocha = new Mocha({ ui: 'tdd', color: false, reporter: 'spec', timeout: 60_000, slow: 10_000 });
  if (process.env.SYNCENGINE_VSCODE_GREP) mocha.grep(new RegExp(process.env.SYNCENGINE_VSCODE_GREP));
  // With SYNCENGINE_VSCODE_BENCH_OUT the figures (*.bench.js) run alone; otherwise the tests.
  const suffix = process.env.SYNCENGINE_VSCODE_BENCH_OUT ? '.bench.js' : '.test.js';
  const files = fs
    .readdirSync(__dirname)
    .filter((name) => name.endsWith(suffix))
    .sort();
  for (const name of files) mocha.addFile(path.join(__dirname, name));

  const resultsFile = process.env.SYNCENGINE_VSCODE_RESULTS;
  const results: Result[] = [];
  return new Promise((resolve, reject) => {
    let runner: RunnerLike;
    try {
      runner = mocha.run((failures) => {
        const summary = {
          passed: results.filter((r) => r.state === 'passed').length,
          failed: failures,
          skipped: results.filter((r) => r.state === 'skipped').length,
          results,
          host: { pid: process.pid, node: process.version, files },
        };
        if (resultsFile) {
          try {
            fs.writeFileSync(resultsFile, JSON.stringify(summary, null, 2));
          } catch (error) {
            console.error(`cannot write ${resultsFile}: ${String(error)}`);
          }
        }
        console.log(`in-host: ${summary.passed} passed, ${failures} failed, ${summary.skipped} skipped`);
        if (failures > 0) reject(new Error(`${failures} tests failed.`));
        else resolve();
      });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    runner.on('pass', (t) => results.push({ title: t.fullTitle(), state: 'passed', ms: t.duration ?? 0 }));
    runner.on('pending', (t) => results.push({ title: t.fullTitle(), state: 'skipped' }));
    runner.on('fail', (t, error) =>
      results.push({ title: t.fullTitle(), state: 'failed', error: error instanceof Error ? error.message : String(error) }),
    );
  });
}
