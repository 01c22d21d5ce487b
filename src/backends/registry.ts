// Opening a backend for a target. Remote backends load lazily: a sync between local folders never
// loads ssh2, basic-ftp or the AWS SDK.
import * as path from 'node:path';
import type { RemoteHostTarget, S3Target, Target } from '../config/target';
import { LocalBackend } from './local';
import type { Backend } from './types';

/** How to reach and authenticate with a remote target. Secrets never come from files we write. */
export interface ConnectOptions {
  /** Password (SFTP, FTP); from SYNCENGINE_PASSWORD or a prompt, never the command line. */
  password?: string;
  /** Passphrase of the private key (SFTP); from SYNCENGINE_PASSPHRASE or a prompt. */
  passphrase?: string;
  /** Private key file (SFTP). Without it: ssh-agent ($SSH_AUTH_SOCK), ~/.ssh/config IdentityFile, the usual ~/.ssh/id_* keys. */
  keyFile?: string;
  /** known_hosts file to check host keys against (default ~/.ssh/known_hosts). */
  knownHostsFile?: string;
  /** A host key fingerprint (SHA256:…) the user confirmed for a host not in known_hosts. */
  acceptHostKey?: string;
  /** ~/.ssh/config to read host aliases from (default ~/.ssh/config; '' disables). */
  sshConfigFile?: string;
  /** FTPS with implicit TLS (port 990 style) instead of explicit AUTH TLS. */
  ftpsImplicit?: boolean;
  /** Accept an FTPS server certificate that does not verify (self-signed test servers). */
  allowUntrustedCertificate?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  /** Parallel connections/sessions the backend may open (default chosen by the backend). */
  connections?: number;
  /**
   * Ask the user (a terminal prompt, an input box). Returns undefined when nobody can answer (CI,
   * no terminal): the backend then fails with a clear error instead of hanging.
   */
  prompt?: (question: string, options: { secret: boolean }) => Promise<string | undefined>;
  /** Non-fatal notices for the user (plain FTP is unencrypted, ...). */
  warn?: (message: string) => void;
}

/** What a remote backend module exports. */
export interface BackendModule<T extends Target> {
  open(target: T, options: ConnectOptions): Promise<Backend>;
}

type RemoteKind = 'sftp' | 'ftp' | 's3';

/**
 * In the bundle each heavy backend is a file of its own beside the main one (dist/backend-sftp.js),
 * required on first use; from compiled sources it is the module beside this one.
 */
function loadBackendModule<T extends Target>(kind: RemoteKind): BackendModule<T> {
  // Called through a variable so that the bundler leaves both requires alone (a literal require
  // would pull every backend into the main bundle). esbuild defines SYNCENGINE_BUNDLE.
  const load: NodeJS.Require = require;
  const bundled = process.env.SYNCENGINE_BUNDLE === '1';
  return load(bundled ? path.join(__dirname, `backend-${kind}.js`) : `./${kind}`) as BackendModule<T>;
}

export async function openBackend(target: Target, options: ConnectOptions = {}): Promise<Backend> {
  switch (target.kind) {
    case 'local':
      return new LocalBackend(target.path);
    case 'sftp':
      return loadBackendModule<RemoteHostTarget>('sftp').open(target, options);
    case 'ftp':
    case 'ftps':
      return loadBackendModule<RemoteHostTarget>('ftp').open(target, options);
    case 's3':
      return loadBackendModule<S3Target>('s3').open(target, options);
  }
}
