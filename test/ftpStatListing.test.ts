// The checks on a batch of STAT listings (src/backends/ftpStatListing.ts), reply by reply.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListTolerant } from '../src/backends/ftpProtocol';
import { newBatchToken, readStatBatch, statBatchCommands } from '../src/backends/ftpStatListing';

const listing = (...lines: string[]) => ({ code: 213, message: ['213-Status follows:', ...lines, '213 End of status'].join('\n') });
const cwdOk = { code: 250, message: '250 Directory successfully changed.' };
const rest = (token: string) => ({ code: 350, message: `350 Restart position accepted (${token}).` });
const rest0 = rest('0');

describe('STAT listing batches', () => {
  it('commands: CWD and STAT . per folder, then REST with the token and REST 0', () => {
    assert.deepEqual(statBatchCommands(['/r/a', '/r/b c'], '123456789'), ['CWD /r/a', 'STAT .', 'CWD /r/b c', 'STAT .', 'REST 123456789', 'REST 0']);
    const tokens = new Set(Array.from({ length: 50 }, newBatchToken));
    assert.equal(tokens.size, 50);
    for (const token of tokens) assert.match(token, /^\d{9,15}$/);
  });

  it('takes each folder its listing lines; a folder CWD refused is reported as such', () => {
    const token = '987654321';
    const result = readStatBatch([cwdOk, listing('d 1', 'f 2'), { code: 550, message: '550 Failed to change directory.' }, listing('elsewhere'), rest(token), rest0], 2, token);
    assert.deepEqual(result, {
      ok: true,
      folders: [
        { kind: 'listing', text: 'd 1\nf 2' },
        { kind: 'no-folder', code: 550, message: '550 Failed to change directory.' },
      ],
    });
    assert.deepEqual(readStatBatch([cwdOk, listing(), rest(token), rest0], 1, token), { ok: true, folders: [{ kind: 'listing', text: '' }] });
  });

  it('refuses a batch with any reply out of place', () => {
    const token = '555444333';
    const good = [cwdOk, listing('x'), rest(token), rest0];
    const bad: [string, { code: number; message: string }[]][] = [
      ['one reply too few', good.slice(0, 3)],
      ['REST without the token', [cwdOk, listing('x'), rest('555444'), rest0]],
      ['a longer number that contains the token', [cwdOk, listing('x'), rest(`1${token}`), rest0]],
      ['the token inside a made-up multi-line reply', [cwdOk, listing('x'), { code: 350, message: `350-x\n350 Restart position accepted (${token}).` }, rest0]],
      ['REST 0 refused', [cwdOk, listing('x'), rest(token), { code: 502, message: '502 REST not implemented.' }]],
      ['STAT refused', [cwdOk, { code: 500, message: '500 Unknown command.' }, rest(token), rest0]],
      ['STAT in one line', [cwdOk, { code: 213, message: '213 End of status' }, rest(token), rest0]],
      ['a CWD reply that is no CWD reply', [{ code: 213, message: '213 End of status' }, listing('x'), rest(token), rest0]],
    ];
    for (const [what, replies] of bad) assert.equal(readStatBatch(replies, 1, token).ok, false, what);
    assert.equal(readStatBatch(good, 1, token).ok, true);
  });
});

describe('parseListTolerant', () => {
  const line = (name: string) => `-rw-r--r--    1 1001     1001            6 Nov 14  2023 ${name}`;
  it('a listing that ends in lines of no known format (a name with line breaks): those lines are dropped', () => {
    const files = parseListTolerant([line('a.txt'), line('b'), '213 E', '350 (0)', ''].join('\r\n'));
    assert.deepEqual(files.map((f) => [f.name, f.size]), [['a.txt', 6], ['b', 6]]);
  });

  it('a listing in no known format is still an error, never an empty folder', () => {
    assert.throws(() => parseListTolerant(['weird 1', 'weird 2', 'weird 3'].join('\n')), /only supports/);
    assert.throws(() => parseListTolerant(['total 2', 'weird 1', 'weird 2'].join('\n')), /only supports/);
    assert.throws(() => parseListTolerant([line('a'), ...Array.from({ length: 9 }, (_, i) => `junk ${i}`)].join('\n')), /only supports/);
    assert.deepEqual(parseListTolerant(''), []);
  });
});

