// Compiles the nodes and assembles dist/ as Node-RED expects it: in dist/nodes each node's .js and
// .html with icons/ and the help (locales/<lang>/<node>.html) beside them; in dist/plugins the plugin
// that brings the package's message catalog, with locales/<lang>/<plugin>.json beside it.
// --source-maps adds a map beside each .js file, for the test coverage to count the lines the
// compiled nodes run against nodes/*.ts; the package build (prepack) has none.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { catalogNamespace, catalogProblems, withNamespace } from './catalog.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'nodes');
const require = createRequire(import.meta.url);
const sourceMaps = process.argv.includes('--source-maps');
const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const nodeNames = Object.values(packageJson['node-red'].nodes).map((file) => path.basename(file, '.js'));
const namespace = catalogNamespace(packageJson);
const pluginFile = path.join(root, Object.values(packageJson['node-red'].plugins)[0]);
const languages = readdirSync(path.join(root, 'locales'));
/** The namespace as a string literal in compiled code, in either quotes. */
const namespaceLiteral = new RegExp(`(["'])${namespace}\\1`);

// A key that a template or a t(…) uses and a catalog lacks would show as the key itself: it fails
// the build, before anything is compiled.
const templates = nodeNames.map((name) => ({
  file: `nodes/${name}.html`,
  text: expandIncludes(readFileSync(path.join(root, 'nodes', `${name}.html`), 'utf8')),
}));
const sources = readdirSync(path.join(root, 'nodes'), { recursive: true })
  .filter((file) => file.endsWith('.ts') && !file.startsWith(`lib${path.sep}`))
  .map((file) => ({ file: `nodes/${file}`, text: readFileSync(path.join(root, 'nodes', file), 'utf8') }));
const problems = catalogProblems(path.join(root, 'locales'), templates, sources);
if (problems.length > 0) {
  console.error(`the message catalogs (locales/<lang>/messages.json):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

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

/**
 * Editor code (a dialog's, nodes/editor/<node>.ts, or the sidebar's, nodes/editor/sidebar/index.ts,
 * and what it imports, lib/topic.ts among them) as one script for the browser. A `node:` import,
 * which the browser cannot have, fails the bundle.
 */
async function editorScript(name, entry = path.join(root, 'nodes', 'editor', `${name}.ts`)) {
  const result = await build({
    entryPoints: [entry],
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
for (const [index, name] of nodeNames.entries()) {
  const script = await editorScript(name);
  if (!namespaceLiteral.test(script))
    throw new Error(`the editor script of ${name} does not name the catalog's namespace ${namespace}`);
  writeFileSync(
    path.join(out, `${name}.html`),
    `${withNamespace(templates[index].text, namespace)}\n<script type="text/javascript">\n${script}</script>\n`,
  );
}
if (!namespaceLiteral.test(readFileSync(path.join(out, 'node-red', 'i18n.js'), 'utf8')))
  throw new Error(`nodes/node-red/i18n.ts does not name the catalog's namespace ${namespace}`);
cpSync(path.join(root, 'icons'), path.join(out, 'icons'), { recursive: true });

// Node-RED gives each node file, and each plugin, a catalog namespace of its own. The package's one
// catalog per language goes to its plugin (dist/plugins/locales/<lang>/<plugin>.json), once; every
// lookup names the plugin's namespace. A node's help stays beside the node's file, where Node-RED
// looks for it.
const pluginName = path.basename(pluginFile, '.js');
mkdirSync(path.dirname(pluginFile), { recursive: true });
writeFileSync(
  pluginFile,
  `// Node-RED loads this plugin's message catalog (locales/<lang>/${pluginName}.json) as ${namespace},
// before the package's nodes and their editor definitions: the catalog of every node and dialog.
// The plugin registers nothing in the runtime; its .html brings the editor's "durable mqtt" sidebar tab.
module.exports = function () {};
`,
);
// The plugin's .html, which Node-RED loads into the editor beside its .js: the sidebar tab's code.
const sidebarScript = await editorScript(
  'sidebar',
  path.join(root, 'nodes', 'editor', 'sidebar', 'index.ts'),
);
if (!namespaceLiteral.test(sidebarScript))
  throw new Error(`the sidebar's script does not name the catalog's namespace ${namespace}`);
writeFileSync(
  path.join(path.dirname(pluginFile), `${pluginName}.html`),
  `<script type="text/javascript">\n${sidebarScript}</script>\n`,
);
for (const lang of languages) {
  const source = path.join(root, 'locales', lang);
  const catalogs = path.join(path.dirname(pluginFile), 'locales', lang);
  mkdirSync(catalogs, { recursive: true });
  cpSync(path.join(source, 'messages.json'), path.join(catalogs, `${pluginName}.json`));
  const help = path.join(out, 'locales', lang);
  mkdirSync(help, { recursive: true });
  for (const name of nodeNames) cpSync(path.join(source, `${name}.html`), path.join(help, `${name}.html`));
}
console.log(
  `built ${nodeNames.length} nodes into ${path.relative(root, out)} and their catalog into ${path.relative(root, path.dirname(pluginFile))}`,
);
