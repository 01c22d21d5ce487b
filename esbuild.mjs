// Bundles the CLI and the extension into dist/. Heavy backend libraries stay external
// or are split so that a local-only sync never loads them.
import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const options = {
  // The folder-listing and hashing workers are loaded by path from beside the bundle that starts them.
  // Remote backends are bundles of their own, required only when a target of their kind is used.
  entryPoints: {
    cli: 'src/cli/main.ts',
    extension: 'src/extension/extension.ts',
    engine: 'src/extension/engineEntry.ts',
    localTreeWorker: 'src/backends/localTreeWorker.ts',
    hashWorker: 'src/core/hashWorker.ts',
    'backend-sftp': 'src/backends/sftp.ts',
    'backend-ftp': 'src/backends/ftp.ts',
    'backend-s3': 'src/backends/s3.ts',
  },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // jsonc-parser's default (UMD) entry requires its parts dynamically, which a bundle cannot follow.
  mainFields: ['module', 'main'],
  outdir: 'dist',
  sourcemap: !production,
  minify: production,
  banner: { js: '#!/usr/bin/env node' },
  // ssh2's optional native helpers: it falls back to pure JavaScript when they cannot be loaded.
  external: ['*.node', 'cpu-features', 'vscode'],
  plugins: [sshNativeCrypto()],
  define: { SYNCENGINE_VERSION: JSON.stringify(pkg.version), 'process.env.SYNCENGINE_BUNDLE': '"1"' },
  logLevel: 'warning',
};

/**
 * ssh2 loads its native crypto (AES-GCM and chacha20-poly1305 without a JavaScript round per
 * packet) by a path relative to its own file, which does not exist beside a bundle. Load it from the
 * installed ssh2 package instead: there for the CLI run from the repository or installed with npm
 * (the 512 MiB SFTP upload takes about a third less time with it); absent in the VSIX, and built
 * for Node rather than Electron anyway, so the extension keeps ssh2's JavaScript fallback.
 */
function sshNativeCrypto() {
  return {
    name: 'ssh2-native-crypto',
    setup(build) {
      build.onResolve({ filter: /[\\/]sshcrypto\.node$/ }, () => ({ path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', external: true }));
    },
  };
}

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
