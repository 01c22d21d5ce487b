// Replies of the FTP control connection as the pipelining code hands them to basic-ftp (src/backends/ftpPipeline.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FTPError } from 'basic-ftp';
import { replyError } from '../src/backends/ftpPipeline';

describe('FTP reply errors', () => {
  it('a refusal is an FTPError with the code and text of the reply, made without a stack', () => {
    const before = Error.stackTraceLimit;
    const error = replyError({ code: 550, message: '550 Could not get file size.' });
    assert.ok(error instanceof FTPError);
    assert.equal(error.code, 550);
    assert.equal(error.message, '550 Could not get file size.');
    // Only the first line ("FTPError: 550 ..."): no frames were captured.
    assert.equal(error.stack?.split('\n').length, 1);
    // Errors made afterwards have their stacks again.
    assert.equal(Error.stackTraceLimit, before);
    assert.ok((new Error('later').stack?.split('\n').length ?? 0) > 1);
  });
});
