// Runs the backend conformance suite against LocalBackend, each test in a fresh temporary folder.
// The root is a subfolder of the temporary folder, so the suite can check that nothing is created
// next to it ("../x") when path escapes are refused.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalBackend } from '../src/backends/local';
import { runConformanceSuite } from './conformance/suite';

runConformanceSuite(
  'LocalBackend',
  async () => {
    const parent = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'syncengine-local-conf-'));
    const root = path.join(parent, 'root');
    await fs.promises.mkdir(root);
    return {
      backend: new LocalBackend(root),
      cleanup: () => fs.promises.rm(parent, { recursive: true, force: true }),
      outside: {
        names: () => fs.promises.readdir(parent),
        exists: async (absolutePath) => fs.existsSync(absolutePath),
      },
    };
  },
  { hasInode: true, keepsMtime: true, mtimePrecisionMs: 1, hasEmptyFolders: true },
);
