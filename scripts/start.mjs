// Starts Node-RED with this package loaded from the working tree and, on a
// new user directory, the hello-world example deployed.
// PORT and NODE_RED_USER_DIR override the defaults (1880, ./.node-red).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const userDir = path.resolve(process.env.NODE_RED_USER_DIR || path.join(root, '.node-red'));
const port = process.env.PORT || '1880';

mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
// Node-RED finds palette packages in <userDir>/node_modules: link this one, as `npm install <folder>` would.
const link = path.join(userDir, 'node_modules', 'node-red-contrib-durable-mqtt');
rmSync(link, { force: true, recursive: true });
symlinkSync(root, link, 'dir');
const userPackage = path.join(userDir, 'package.json');
if (!existsSync(userPackage)) {
  writeFileSync(
    userPackage,
    JSON.stringify(
      {
        name: 'node-red-project',
        private: true,
        dependencies: { 'node-red-contrib-durable-mqtt': `file:${root}` },
      },
      null,
      2,
    ),
  );
}
const flowFile = path.join(userDir, 'flows.json');
if (!existsSync(flowFile)) {
  // The example is written for import, which puts its nodes on the current tab. In a flow file each
  // node must name its tab (z) itself: the runtime never starts a node that has none.
  const tab = { id: 'd0a1c0ffee000000', type: 'tab', label: 'Hello world' };
  const example = JSON.parse(readFileSync(path.join(root, 'examples', '01-hello-world.json'), 'utf8'));
  const nodes = example.map((node) => ('x' in node && !node.z ? { ...node, z: tab.id } : node));
  writeFileSync(flowFile, JSON.stringify([tab, ...nodes], null, 2));
}
const settingsFile = path.join(userDir, 'settings.js');
writeFileSync(
  settingsFile,
  `// Written by scripts/start.mjs at each start.
module.exports = {
  uiHost: '127.0.0.1',
  flowFile: 'flows.json',
  credentialSecret: false,
  logging: { console: { level: 'info', metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
};
`,
);

const redJs = require.resolve('node-red/red.js');
console.log(
  `Node-RED on http://127.0.0.1:${port} (user directory ${path.relative(process.cwd(), userDir) || '.'})`,
);
const child = spawn(
  process.execPath,
  [redJs, '--userDir', userDir, '--port', port, '--settings', settingsFile],
  {
    stdio: 'inherit',
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
