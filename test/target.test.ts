// Target strings: folder paths and sftp/ftp/ftps/s3 URLs, and their errors.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { describeTarget, parseTarget } from '../src/config/target';

describe('parseTarget', () => {
  it('folder paths and file:// URLs are local folders', () => {
    assert.deepEqual(parseTarget('some/dir', 'source'), { kind: 'local', raw: 'some/dir', path: path.resolve('some/dir') });
    assert.equal(parseTarget('file:///tmp/a%20b', 'source').kind, 'local');
    assert.equal((parseTarget('file:///tmp/a%20b', 'source') as { path: string }).path, '/tmp/a b');
  });
  it('sftp URLs: user, host, port, absolute and login-relative paths', () => {
    assert.deepEqual(parseTarget('sftp://me@example.org:2222/var/www/', 'destination'), {
      kind: 'sftp', raw: 'sftp://me@example.org:2222/var/www/', host: 'example.org', port: 2222, user: 'me', path: '/var/www',
    });
    const home = parseTarget('sftp://box/~/site', 'destination');
    assert.equal(home.kind === 'sftp' && home.path, 'site');
    assert.equal(describeTarget(home), 'sftp://box/~/site');
    const root = parseTarget('sftp://box', 'destination');
    assert.equal(root.kind === 'sftp' && root.path, '/');
    const v6 = parseTarget('sftp://[::1]:22/x', 'destination');
    assert.equal(v6.kind === 'sftp' && v6.host, '::1');
  });
  it('ftp and ftps URLs', () => {
    const t = parseTarget('ftps://u%40corp@ftp.example.org/pub/site', 'destination');
    assert.equal(t.kind, 'ftps');
    assert.equal(t.kind === 'ftps' && t.user, 'u@corp');
    assert.equal(t.kind === 'ftps' && t.path, '/pub/site');
  });
  it('s3 URLs', () => {
    assert.deepEqual(parseTarget('s3://bucket/some/prefix/', 'destination'), { kind: 's3', raw: 's3://bucket/some/prefix/', bucket: 'bucket', prefix: 'some/prefix' });
    assert.equal(describeTarget(parseTarget('s3://bucket', 'destination')), 's3://bucket');
  });
  it('refuses what it cannot use, with the reason', () => {
    assert.throws(() => parseTarget('', 'source'), /source is empty/);
    assert.throws(() => parseTarget('gopher://x/y', 'destination'), /Unknown scheme "gopher:\/\/"/);
    assert.throws(() => parseTarget('sftp://me:pw@host/x', 'destination'), /Put no password in the destination URL/);
    assert.throws(() => parseTarget('sftp:///x', 'destination'), /names no host|not a valid URL/);
    assert.throws(() => parseTarget('s3://bucket/x?versionId=1', 'destination'), /has a query or fragment/);
    assert.throws(() => parseTarget('s3://key:secret@bucket/x', 'destination'), /s3:\/\/bucket\/prefix/);
    assert.throws(() => parseTarget('sftp://host/%E0%A4%A', 'destination'), /malformed %-escape/);
  });
});
