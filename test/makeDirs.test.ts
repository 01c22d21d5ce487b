// makeDirs: mkdir -p that ends, with Node's error, where Node's recursive mkdir would spin forever.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { makeDirs } from '../src/core/makeDirs';

let root: string | undefined;
function tempRoot(): string {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-makedirs-'));
  return root;
}
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = undefined;
});

const codeOf = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
};

describe('makeDirs', () => {
  it('creates the missing folders, and is a no-op on an existing folder', () => {
    const dir = path.join(tempRoot(), 'a', 'b', 'c');
    makeDirs(dir);
    assert.equal(fs.statSync(dir).isDirectory(), true);
    makeDirs(dir);
    makeDirs(path.join(root!, 'a'));
  });

  it('gives Node’s error codes for files in the way, like mkdir -p', () => {
    const base = tempRoot();
    fs.writeFileSync(path.join(base, 'file'), 'x');
    assert.equal(codeOf(() => makeDirs(path.join(base, 'file'))), 'EEXIST');
    assert.equal(codeOf(() => makeDirs(path.join(base, 'file', 'sub'))), 'ENOTDIR');
    fs.symlinkSync(path.join(base, 'nowhere'), path.join(base, 'dangling'));
    assert.equal(codeOf(() => makeDirs(path.join(base, 'dangling', 'sub'))), 'EEXIST');
    assert.deepEqual(fs.readdirSync(base).sort(), ['dangling', 'file']);
  });

  it('ends with ENOENT under /proc instead of spinning forever', { skip: !fs.existsSync('/proc/self') }, () => {
    // In a child process: a regression would never return, and is killed after 15 s.
    const script = `const { makeDirs } = require(${JSON.stringify(require.resolve('../src/core/makeDirs'))});
      try { makeDirs('/proc/syncengine-no-such/a/b'); console.log('made'); } catch (e) { console.log(e.code); }`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
    assert.equal(r.signal, null, 'makeDirs did not return');
    assert.equal(r.stdout.trim(), 'ENOENT');
  });
});
