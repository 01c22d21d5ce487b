// Where local tree walks run when the process lets them block its thread (the CLI): a walk that
// starts while another runs in a worker runs on this thread; otherwise in a worker, as in the
// extension host. (A file of its own: the setting is per process.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { letTreeWalksBlockThisThread, walkInWorker, walkLocalTreeColumns } from '../src/backends/localTree';
import type { TreeListingOptions } from '../src/backends/types';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-walks-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));

/** A tree with enough files for the walk to report progress (every 2,000 files). */
function tree(name: string, files: number): string {
  const root = path.join(base, name);
  for (let i = 0; i < files; i++) {
    const dir = path.join(root, `d${i % 25}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}.txt`), `${name} ${i}`);
  }
  return root;
}

const options: TreeListingOptions = { patterns: [], ignoreFiles: 'collect' };

/** Starts a walk; `progressDuringCall` counts the progress reports made before walkInWorker returned (a walk on this thread). */
function startWalk(root: string): { result: ReturnType<typeof walkInWorker>; progressDuringCall: number } {
  let calling = true;
  let progressDuringCall = 0;
  const result = walkInWorker({
    root,
    ...options,
    onProgress: () => {
      if (calling) progressDuringCall++;
    },
  });
  calling = false;
  return { result, progressDuringCall };
}

describe('local tree walks in a process that lets them block its thread', () => {
  it('the second of two walks at once runs on this thread, the first in a worker; alone, a walk goes to a worker again', async () => {
    const a = tree('a', 2500);
    const b = tree('b', 2600);
    letTreeWalksBlockThisThread();
    const first = startWalk(a);
    const second = startWalk(b);
    assert.equal(first.progressDuringCall, 0, 'the first walk runs in a worker');
    assert.ok(second.progressDuringCall > 0, 'the second walk ran on this thread, during the call');
    const [ra, rb] = await Promise.all([first.result, second.result]);
    assert.deepEqual(ra.columns.paths, walkLocalTreeColumns(a, options).columns.paths);
    assert.deepEqual(rb.columns.paths, walkLocalTreeColumns(b, options).columns.paths);
    assert.equal(ra.columns.paths.length, 2500);
    assert.deepEqual([...rb.columns.sizes], [...walkLocalTreeColumns(b, options).columns.sizes]);
    // Both done: the next walk has no other beside it and goes to a worker.
    const third = startWalk(b);
    assert.equal(third.progressDuringCall, 0);
    assert.equal((await third.result).columns.paths.length, 2600);
  });
});
