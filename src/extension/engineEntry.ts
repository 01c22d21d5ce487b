// The engine as the extension uses it: a bundle of its own (dist/engine.js), loaded on the first
// sync so that activation stays small.
export { runSync } from '../core/engine';
export { GuardError } from '../core/errors';
export { inScope } from '../core/scanner';
export { StateStore, pairId } from '../core/state';
export { LocalBackend } from '../backends/local';
export { openBackend } from '../backends/registry';
