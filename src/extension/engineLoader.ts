// Loads the engine bundle on first use (see engineEntry.ts).
import * as path from 'node:path';
import type * as Engine from './engineEntry';

let loaded: typeof Engine | undefined;

export function engine(): typeof Engine {
  // Through a variable so the bundler leaves the require alone; esbuild defines SYNCENGINE_BUNDLE.
  const load: NodeJS.Require = require;
  loaded ??= load(process.env.SYNCENGINE_BUNDLE === '1' ? path.join(__dirname, 'engine.js') : './engineEntry') as typeof Engine;
  return loaded;
}
