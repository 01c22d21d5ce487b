// Large-file throughput of the SFTP backend against OpenSSH's sftp(1), same file, same server, same
// run, interleaved so both see the same machine load. Not a timed test: it is skipped unless
// SYNCENGINE_SFTP_BENCH=1 (size in MiB with SYNCENGINE_SFTP_BENCH_MIB, default 256; rounds with
// SYNCENGINE_SFTP_BENCH_ROUNDS, default 5). It fails if our median throughput is below 0.9x sftp's.
//
//   npx tsc -p tsconfig.test.json && SYNCENGINE_SFTP_BENCH=1 node --test out/test/sftp.bench.test.js
//
// Both sides are measured end to end, connection setup included: `sftp -b` with put/get, and our
// backend opened, fed from / writing to a LocalBackend file (what the engine does), and closed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { it } from 'node:test';
import { LocalBackend } from '../src/backends/local';
import { open } from '../src/backends/sftp';
import { startSshd } from './servers/sshd';

const enabled = process.env.SYNCENGINE_SFTP_BENCH === '1';
const MiB = 1024 * 1024;

it('large-file throughput vs OpenSSH sftp', { skip: enabled ? false : 'set SYNCENGINE_SFTP_BENCH=1 to run', timeout: 900_000 }, async (t) => {
  const size = Number(process.env.SYNCENGINE_SFTP_BENCH_MIB ?? 256);
  const rounds = Number(process.env.SYNCENGINE_SFTP_BENCH_ROUNDS ?? 5);
  delete process.env.SSH_AUTH_SOCK;
  const s = await startSshd();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-sftp-bench-'));
  try {
    fs.chmodSync(work, 0o755);
    const src = path.join(work, 'src.bin');
    const fd = fs.openSync(src, 'w');
    const r = spawnSync('head', ['-c', `${size}M`, '/dev/urandom'], { stdio: ['ignore', fd, 'inherit'] });
    fs.closeSync(fd);
    assert.equal(r.status, 0);
    fs.chmodSync(src, 0o644);
    const dir = s.makeDir('bench');
    const sftpArgs = ['-q', '-o', `UserKnownHostsFile=${s.knownHostsFile}`, '-o', 'BatchMode=yes', '-i', s.keyFile, '-P', String(s.port), '-b', '-', `${s.user}@127.0.0.1`];
    const sftp = (command: string) => {
      const x = spawnSync('sftp', sftpArgs, { input: `${command}\n`, timeout: 600_000 });
      assert.equal(x.status, 0, x.stderr?.toString());
    };
    const local = new LocalBackend(work);
    const target = { kind: 'sftp' as const, raw: '', host: '127.0.0.1', port: s.port, user: s.user, path: dir };
    const options = { keyFile: s.keyFile, knownHostsFile: s.knownHostsFile, sshConfigFile: '' };
    const seconds = async (body: () => unknown) => {
      const start = process.hrtime.bigint();
      await body();
      return Number(process.hrtime.bigint() - start) / 1e9;
    };
    const times: Record<'sftpPut' | 'sftpGet' | 'ourPut' | 'ourGet', number[]> = { sftpPut: [], sftpGet: [], ourPut: [], ourGet: [] };
    for (let round = 0; round < rounds; round++) {
      times.sftpPut.push(await seconds(() => sftp(`put ${src} ${dir}/openssh.bin`)));
      times.ourPut.push(
        await seconds(async () => {
          const backend = await open(target, options);
          await backend.write('ours.bin', await local.read('src.bin'), { size: size * MiB });
          await backend.close();
        }),
      );
      times.sftpGet.push(await seconds(() => sftp(`get ${dir}/openssh.bin ${work}/openssh-down.bin`)));
      times.ourGet.push(
        await seconds(async () => {
          const backend = await open(target, options);
          await local.write('ours-down.bin', await backend.read('ours.bin'));
          await backend.close();
        }),
      );
    }
    assert.equal(spawnSync('cmp', [src, path.join(dir, 'ours.bin')]).status, 0, 'upload intact');
    assert.equal(spawnSync('cmp', [src, path.join(work, 'ours-down.bin')]).status, 0, 'download intact');
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    for (const [name, list] of Object.entries(times)) {
      t.diagnostic(`${name.padEnd(7)} ${list.map((x) => x.toFixed(2)).join(' ')} s; median ${(size / median(list)).toFixed(0)} MiB/s`);
    }
    const up = median(times.sftpPut) / median(times.ourPut);
    const down = median(times.sftpGet) / median(times.ourGet);
    t.diagnostic(`ours / OpenSSH sftp throughput: upload ${up.toFixed(2)}x, download ${down.toFixed(2)}x (${size} MiB, ${rounds} rounds)`);
    assert.ok(up >= 0.9, `upload at ${up.toFixed(2)}x of sftp`);
    assert.ok(down >= 0.9, `download at ${down.toFixed(2)}x of sftp`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    await s.stop();
  }
});
