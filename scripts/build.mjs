// Compiles the nodes and assembles dist/nodes as Node-RED expects it:
// each node's .js and .html with icons/ and locales/ beside them.
// --source-maps adds a map beside each .js file, for the test coverage to count the lines the
// compiled nodes run against nodes/*.ts; the package build (prepack) has none.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'nodes');
const require = createRequire(import.meta.url);
const sourceMaps = process.argv.includes('--source-maps');

rmSync(path.join(root, 'dist'), { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    require.resolve('typescript/bin/tsc'),
    '-p',
    path.join(root, 'tsconfig.json'),
    ...(sourceMaps ? ['--sourceMap'] : []),
  ],
  {
    stdio: 'inherit',
  },
);

const nodeFiles = Object.values(
  JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))['node-red'].nodes,
);
const nodeNames = nodeFiles.map((file) => path.basename(file, '.js'));

for (const name of nodeNames)
  cpSync(path.join(root, 'nodes', `${name}.html`), path.join(out, `${name}.html`));
cpSync(path.join(root, 'icons'), path.join(out, 'icons'), { recursive: true });

// Node-RED gives each node file its own message catalog (locales/<lang>/<node>.json).
// The package keeps one catalog per language; every node file gets a copy, so RED._
// finds the same keys from any node.
for (const lang of readdirSync(path.join(root, 'locales'))) {
  const source = path.join(root, 'locales', lang);
  const target = path.join(out, 'locales', lang);
  mkdirSync(target, { recursive: true });
  const catalog = readFileSync(path.join(source, 'messages.json'), 'utf8');
  JSON.parse(catalog); // a broken catalog fails the build, not the editor
  for (const name of nodeNames) {
    writeFileSync(path.join(target, `${name}.json`), catalog);
    cpSync(path.join(source, `${name}.html`), path.join(target, `${name}.html`));
  }
}
console.log(`built ${nodeNames.length} nodes into ${path.relative(root, out)}`);
