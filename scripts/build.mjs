// Compiles the nodes and assembles dist/nodes as Node-RED expects it:
// each node's .js and .html with icons/ and locales/ beside them.
// --source-maps adds a map beside each .js file, for the test coverage to count the lines the
// compiled nodes run against nodes/*.ts; the package build (prepack) has none.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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

/**
 * A dialog's code (nodes/editor/<node>.ts and what it imports, lib/topic.ts among them) as one
 * script for the browser. A `node:` import, which the browser cannot have, fails the bundle.
 */
async function editorScript(name) {
  const result = await build({
    entryPoints: [path.join(root, 'nodes', 'editor', `${name}.ts`)],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    loader: { '.css': 'text' },
    write: false,
    logLevel: 'warning',
  });
  const code = result.outputFiles[0].text;
  if (code.includes('</script')) throw new Error(`the editor script of ${name} contains </script`);
  return code;
}

/**
 * A template with its includes expanded: `<!-- include <file> name="value" ... -->` stands for
 * nodes/editor/<file> (less its opening comment) with each {{name}} replaced, indented as the line.
 */
function expandIncludes(template) {
  return template.replace(
    /^( *)<!-- include ([\w.-]+)((?: \w+="[^"]*")*) -->$/gm,
    (_, indent, file, attributes) => {
      const values = Object.fromEntries(
        [...attributes.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]),
      );
      const fragment = readFileSync(path.join(root, 'nodes', 'editor', file), 'utf8')
        .replace(/^<!--[\s\S]*?-->\n/, '')
        .replace(/\{\{(\w+)\}\}/g, (placeholder, name) => {
          if (!(name in values))
            throw new Error(`${file} needs ${placeholder}, which the include does not give`);
          return values[name];
        });
      return fragment
        .trimEnd()
        .split('\n')
        .map((line) => (line ? indent + line : line))
        .join('\n');
    },
  );
}

// Node-RED loads one HTML file per node file: the templates (nodes/<node>.html) followed by the
// dialog's code inline. Inline rather than a resources/ script: no second request when the editor
// loads, no path that depends on httpAdminRoot, and what the editor runs ships in dist/ with the rest.
for (const name of nodeNames) {
  const template = expandIncludes(readFileSync(path.join(root, 'nodes', `${name}.html`), 'utf8'));
  const script = await editorScript(name);
  writeFileSync(
    path.join(out, `${name}.html`),
    `${template}\n<script type="text/javascript">\n${script}</script>\n`,
  );
}
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
