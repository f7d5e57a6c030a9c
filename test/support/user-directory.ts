import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const PACKAGE = 'node-red-contrib-durable-mqtt';

/** A new Node-RED user directory, as a fresh install has it, with `dependencies` in its package.json. */
export function newUserDirectory(directory: string, dependencies: Record<string, string> = {}): string {
  mkdirSync(path.join(directory, 'node_modules'), { recursive: true });
  writeFileSync(
    path.join(directory, 'package.json'),
    JSON.stringify({ name: 'node-red-project', private: true, dependencies }, null, 2),
  );
  return directory;
}

/**
 * A new Node-RED user directory with this working tree's package in it, linked as
 * `npm install <folder>` links it: Node-RED loads the nodes from the repository's dist/.
 */
export function linkedUserDirectory(directory: string): string {
  newUserDirectory(directory, { [PACKAGE]: `file:${root}` });
  symlinkSync(root, path.join(directory, 'node_modules', PACKAGE), 'dir');
  return directory;
}
