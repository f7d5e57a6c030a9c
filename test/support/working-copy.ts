import { cpSync, symlinkSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
/** What a copy leaves out: dependencies (linked instead), history, builds and local Node-RED data. */
const NOT_COPIED = new Set(['node_modules', '.git', 'dist', '.node-red', 'test-artifacts']);

/**
 * A copy of the working tree in `directory`, sharing the repository's node_modules. `npm pack` and
 * `npm start` build, which deletes and rewrites dist/: run in a copy, they leave the repository's
 * dist/ intact for the test files running alongside (they load it).
 */
export function copyWorkingTree(directory: string): string {
  cpSync(root, directory, {
    recursive: true,
    filter: (file) => {
      const relative = path.relative(root, file);
      return !NOT_COPIED.has(relative.split(path.sep)[0]) && !relative.endsWith('.tgz');
    },
  });
  symlinkSync(path.join(root, 'node_modules'), path.join(directory, 'node_modules'), 'dir');
  return directory;
}
