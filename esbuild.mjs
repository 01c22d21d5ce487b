// Bundles the CLI (and, later, the extension) into dist/. Heavy backend libraries stay external
// or are split so that a local-only sync never loads them.
import * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const options = {
  // The folder-listing worker is loaded by path from beside the bundle that starts it.
  entryPoints: { cli: 'src/cli/main.ts', localTreeWorker: 'src/backends/localTreeWorker.ts' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outdir: 'dist',
  sourcemap: !production,
  minify: production,
  banner: { js: '#!/usr/bin/env node' },
  define: { SYNCENGINE_VERSION: JSON.stringify(pkg.version) },
  logLevel: 'warning',
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
