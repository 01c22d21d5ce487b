// The backend conformance suite and the engine's remote scenarios against S3Backend on s3rver
// (test/servers/s3.ts), each test in a fresh key prefix of one bucket.
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { openS3 } from '../src/backends/s3';
import { runConformanceSuite } from './conformance/suite';
import { runRemoteScenarios } from './helpers/remoteScenarios';
import { s3Env, startS3Server, type S3TestServer } from './servers/s3';

let server: S3TestServer;

before(async () => {
  server = await startS3Server();
  s3Env(server);
});

after(async () => {
  await server?.stop();
});

async function freshPrefix(tag: string, connections?: number) {
  const prefix = `${tag}-${randomBytes(6).toString('hex')}/root`;
  const backend = await openS3(
    { kind: 's3', raw: `s3://${server.bucket}/${prefix}`, bucket: server.bucket, prefix },
    { s3Endpoint: server.endpoint, s3Region: server.region, s3PathStyle: true, ...(connections !== undefined ? { connections } : {}) },
  );
  return { backend, cleanup: async () => undefined };
}

runConformanceSuite(
  'S3Backend',
  // Two parts in flight (5 MiB each): the source may run at most ~3 parts ahead of the bytes the
  // server has acknowledged, within the suite's 16 MiB limit for a 24 MiB file.
  () => freshPrefix('conf', 2),
  { hasInode: false, keepsMtime: false, hasEmptyFolders: true, largeFileBytes: 24 * 1024 * 1024 },
);

// Known failure: "a remote edit comes down; keep-both keeps both versions of a conflict on both
// sides" writes the remote copy with a modification time two minutes ahead so that it wins a
// newest-wins choice. S3Backend reports LastModified (the upload time) as the modification time (see
// src/backends/s3.ts for why), so both versions look equally new (within the 2 s tolerance) and the
// source wins. The helper would need to wait > 3 s before that remote write for stores that report
// upload times; remoteScenarios.ts is not ours to change.
runRemoteScenarios('S3', () => freshPrefix('scen'));
