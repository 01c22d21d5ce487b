// The bundled `syncengine` CLI against remote targets on real servers: a user's first sync, a change
// coming back, and the errors a user sees for a wrong password or bucket.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Fixture, runCliProcess } from './helpers/fixture';
import { startS3Server, type S3TestServer } from './servers/s3';
import { startVsftpd, type VsftpdServer } from './servers/vsftpd';

describe('syncengine CLI with an s3:// target', () => {
  let server: S3TestServer;
  const fx = new Fixture('syncengine-cli-s3');
  before(async () => {
    server = await startS3Server();
  });
  after(async () => {
    await server?.stop();
    fx.cleanup();
  });
  const env = () => ({ AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region });
  const s3 = (...extra: string[]) => ['--s3-endpoint', server.endpoint, '--s3-path-style', '--json', ...extra];

  it('syncs a folder up and a remote change back down', async () => {
    fx.write('src', 'index.html', '<h1>hi</h1>');
    fx.write('src', 'css/site.css', 'body{}');
    const target = `s3://${server.bucket}/site`;
    const up = await runCliProcess(['sync', fx.src, target, ...s3()], { env: env() });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(JSON.parse(up.stdout).done.uploaded, 2);
    fx.write('src', 'index.html', '<h1>hello</h1>');
    fs.renameSync(path.join(fx.src, 'css'), path.join(fx.src, 'styles'));
    const again = await runCliProcess(['sync', fx.src, target, ...s3()], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    const summary = JSON.parse(again.stdout);
    assert.equal(summary.done.uploaded, 1);
    assert.equal(summary.done.renamedDestination, 1, 'the moved folder is copied server-side, not uploaded');
    const status = await runCliProcess(['status', fx.src, target, ...s3()], { env: env() });
    assert.equal(JSON.parse(status.stdout).counts.upload, 0);
  });

  it('a missing bucket is a clear error that names it', async () => {
    const r = await runCliProcess(['sync', fx.src, 's3://no-such-bucket-here/x', ...s3()], { env: env() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no-such-bucket-here/);
    assert.match(r.stderr, /bucket/i);
  });
});

describe('syncengine CLI with an ftps:// target', () => {
  let server: VsftpdServer;
  const fx = new Fixture('syncengine-cli-ftps');
  before(async () => {
    server = await startVsftpd({ tls: 'explicit' });
  });
  after(async () => {
    await server?.stop();
    fx.cleanup();
  });

  it('takes the password from SYNCENGINE_PASSWORD, never the command line, and syncs', async () => {
    fx.write('src', 'a.txt', 'A');
    const folder = path.basename(server.makeFolder('cli'));
    const target = `ftps://${server.user}@127.0.0.1:${server.port}/~/${folder}`;
    const r = await runCliProcess(['sync', fx.src, target, '--allow-untrusted-cert', '--json'], { env: { SYNCENGINE_PASSWORD: server.password } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(server.root, folder, 'a.txt'), 'utf8'), 'A');
  });

  it('a wrong password gives an authentication error naming the host, and changes nothing', async () => {
    const folder = path.basename(server.makeFolder('cli-wrong'));
    const target = `ftps://${server.user}@127.0.0.1:${server.port}/~/${folder}`;
    const r = await runCliProcess(['sync', fx.src, target, '--allow-untrusted-cert', '--json'], { env: { SYNCENGINE_PASSWORD: 'not-the-password' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /127\.0\.0\.1/);
    assert.match(r.stderr, /login|auth|password/i);
    assert.deepEqual(fs.readdirSync(path.join(server.root, folder)), []);
  });

  it('a destination folder the server will not create is an error, and the CLI exits at once', async () => {
    fx.write('src', 'a.txt', 'A');
    // The FTP user may not create folders at the file system's root.
    const target = `ftps://${server.user}@127.0.0.1:${server.port}/syncengine-not-allowed-here`;
    const started = Date.now();
    const r = await runCliProcess(['sync', fx.src, target, '--allow-untrusted-cert'], { env: { SYNCENGINE_PASSWORD: server.password }, timeoutMs: 30_000 });
    assert.equal(r.signal, null, `the CLI did not exit by itself after the error (killed after ${Date.now() - started} ms); stderr: ${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Cannot create folder "" \(the target folder\) on .*127\.0\.0\.1.*permission denied/);
    assert.equal(fs.existsSync('/syncengine-not-allowed-here'), false);
  });
});
