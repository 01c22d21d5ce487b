// The SFTP backend against a real OpenSSH sshd on 127.0.0.1 (test/servers/sshd.ts): the shared
// backend conformance suite and the engine's remote scenarios. Authentication, ssh config, host
// keys and remote hashing are in sftp.features.test.ts; dropped connections and other faults in
// sftp.faults.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after } from 'node:test';
import type { ConnectOptions } from '../src/backends/registry';
import { open } from '../src/backends/sftp';
import type { Backend } from '../src/backends/types';
import { runConformanceSuite } from './conformance/suite';
import { runRemoteScenarios } from './helpers/remoteScenarios';
import { startSshd, type SshdServer } from './servers/sshd';

delete process.env.SSH_AUTH_SOCK; // never use the developer's agent here

let server: Promise<SshdServer> | undefined;
const sshd = () => (server ??= startSshd());
after(async () => {
  if (server) await (await server).stop();
});

async function openAt(dir: string, extra: ConnectOptions = {}): Promise<Backend> {
  const s = await sshd();
  return open(
    { kind: 'sftp', raw: `sftp://${s.user}@127.0.0.1:${s.port}${dir}`, host: s.host, port: s.port, user: s.user, path: dir },
    { keyFile: s.keyFile, knownHostsFile: s.knownHostsFile, sshConfigFile: '', ...extra },
  );
}

runConformanceSuite(
  'SftpBackend',
  async () => {
    const s = await sshd();
    // The root is a folder inside a fresh folder, so the suite can check nothing appears next to it.
    const parent = s.makeDir('conf');
    const root = path.join(parent, 'root');
    fs.mkdirSync(root);
    s.chown(root);
    const backend = await openAt(root);
    return {
      backend,
      cleanup: () => fs.promises.rm(parent, { recursive: true, force: true }),
      outside: {
        names: () => fs.promises.readdir(parent),
        exists: async (absolutePath) => fs.existsSync(absolutePath),
      },
    };
  },
  // SFTP v3 keeps whole seconds; there are no inode numbers.
  { hasInode: false, keepsMtime: true, mtimePrecisionMs: 1000, hasEmptyFolders: true },
);

runRemoteScenarios('SFTP', async () => {
  const s = await sshd();
  const dir = s.makeDir('scenario');
  const backend = await openAt(dir);
  return { backend, cleanup: () => fs.promises.rm(dir, { recursive: true, force: true }) };
});
