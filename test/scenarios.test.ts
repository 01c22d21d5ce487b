// Scenario tests over real folders through the CLI: every row of the three-way table × every sync
// mode, then convergence (a second run has nothing to do) and recoverability (what was deleted or
// overwritten is in the trash of its side).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Entry } from '../src/backends/types';
import type { SyncMode } from '../src/core/options';
import { Fixture } from './helpers/fixture';
import { EXPECTED, ROWS, T0 } from './helpers/table';

const contentOf = (e: Entry) => e.hash!.slice(2, -1);

let fixture: Fixture | undefined;
afterEach(() => {
  fixture?.cleanup();
  fixture = undefined;
});

describe('every row × every mode, on real folders', () => {
  for (const mode of Object.keys(EXPECTED) as SyncMode[]) {
    for (const [row, [base, source, destination]] of Object.entries(ROWS)) {
      it(`${mode}: ${row}`, async () => {
        const fx = (fixture = new Fixture());
        // A bystander file keeps either side from being empty (that would trip the empty-side guard).
        fx.write('src', 'bystander', 'b');
        fx.write('dst', 'bystander', 'b');
        if (base) {
          fx.write('src', 'f', contentOf(base), T0);
          fx.write('dst', 'f', contentOf(base), T0);
          const first = await fx.sync();
          assert.equal(first.code, 0, first.stderr);
        }
        for (const [side, entry] of [['src', source], ['dst', destination]] as const) {
          if (!entry) fx.remove(side, 'f');
          else if (!base || contentOf(entry) !== contentOf(base)) fx.write(side, 'f', contentOf(entry), entry.mtimeMs);
        }
        const before = { src: fx.read('src', 'f'), dst: fx.read('dst', 'f') };
        const result = await fx.sync('--mode', mode, '--conflict', 'manual');
        const after = { src: fx.read('src', 'f'), dst: fx.read('dst', 'f') };
        const expected = EXPECTED[mode][row]!;
        switch (expected) {
          case 'upload':
            assert.equal(after.src, before.src);
            assert.equal(after.dst, before.src);
            if (before.dst !== undefined) assert.deepEqual(fx.trash('dst')['f'], [before.dst], 'the overwritten destination version is in its trash');
            break;
          case 'download':
            assert.equal(after.dst, before.dst);
            assert.equal(after.src, before.dst);
            if (before.src !== undefined) assert.deepEqual(fx.trash('src')['f'], [before.src], 'the overwritten source version is in its trash');
            break;
          case 'delete-destination':
            assert.equal(after.src, before.src);
            assert.equal(after.dst, undefined);
            assert.deepEqual(fx.trash('dst')['f'], [before.dst], 'the deleted file is in the destination trash');
            break;
          case 'delete-source':
            assert.equal(after.dst, before.dst);
            assert.equal(after.src, undefined);
            assert.deepEqual(fx.trash('src')['f'], [before.src], 'the deleted file is in the source trash');
            break;
          default:
            assert.deepEqual(after, before, 'nothing changes');
        }
        assert.equal(result.code, expected === 'conflict' ? 3 : 0, result.stderr);
        const again = await fx.sync('--mode', mode, '--conflict', 'manual');
        const c = again.json!.counts;
        assert.equal(c.upload + c.download + c.deleteSource + c.deleteDestination + c.renameSource + c.renameDestination + c.record, 0, 'a second run has nothing to do');
      });
    }
  }
});
