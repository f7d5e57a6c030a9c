import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { NodeRedProcess } from './node-red-process.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');

/** A Node-RED and the Node.js that runs it. */
export interface NodeRedRuntime {
  /** How test names call it, e.g. "Node-RED 4.1 on Node.js 20". */
  label: string;
  /** The node binary. */
  node: string;
  /** Node-RED's red.js. */
  redJs: string;
}

/** Runs npm in `cwd`; what it printed is appended to `log` whether it succeeds or not. */
export async function npm(args: string[], cwd: string, log: { text: string }): Promise<void> {
  log.text += `$ npm ${args.join(' ')}\n`;
  try {
    const { stdout, stderr } = await run('npm', args, {
      cwd,
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    log.text += stdout + stderr;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    log.text += (failed.stdout ?? '') + (failed.stderr ?? '');
    throw error;
  }
}

function majorOf(version: string): string {
  return version.replace(/^v/, '').split('.')[0];
}

function versionOf(packageDirectory: string): string {
  return JSON.parse(readFileSync(path.join(packageDirectory, 'package.json'), 'utf8')).version;
}

/** The Node-RED of this repository's devDependencies, on the Node.js running the tests. */
export function repositoryNodeRed(): NodeRedRuntime {
  const redJs = require.resolve('node-red/red.js');
  const label = `Node-RED ${versionOf(path.dirname(redJs))} on Node.js ${process.versions.node}`;
  return { label, node: process.execPath, redJs };
}

/**
 * Node-RED `nodeRedMajor` and Node.js `nodeMajor` (the npm package `node`, which
 * brings its binary), installed from the npm registry into node_modules/.cache
 * once and reused by later runs.
 */
export async function registryNodeRed(
  nodeRedMajor: number,
  nodeMajor: number,
  log: { text: string },
): Promise<NodeRedRuntime> {
  const directory = path.join(
    root,
    'node_modules',
    '.cache',
    'durable-mqtt',
    `node-red-${nodeRedMajor}-node-${nodeMajor}`,
  );
  const node = path.join(directory, 'node_modules', 'node', 'bin', 'node');
  const redJs = path.join(directory, 'node_modules', 'node-red', 'red.js');
  const complete = path.join(directory, 'installed');
  if (!existsSync(complete)) {
    rmSync(directory, { recursive: true, force: true });
    mkdirSync(directory, { recursive: true });
    writeFileSync(path.join(directory, 'package.json'), JSON.stringify({ name: 'runtime', private: true }));
    await npm(
      ['install', `node@${nodeMajor}`, `node-red@${nodeRedMajor}`, '--no-audit', '--no-fund', '--no-save'],
      directory,
      log,
    );
    // The `node` package fetches its binary in a preinstall script: a policy that skips scripts leaves none.
    if (!existsSync(node)) throw new Error(`npm installed the node package without its binary (${node})`);
    writeFileSync(complete, '');
  }
  const { stdout } = await run(node, ['--version']);
  const nodeRedVersion = versionOf(path.dirname(redJs));
  if (majorOf(stdout.trim()) !== String(nodeMajor) || majorOf(nodeRedVersion) !== String(nodeRedMajor))
    throw new Error(`${directory} holds Node.js ${stdout.trim()} and Node-RED ${nodeRedVersion}: remove it`);
  return { label: `Node-RED ${nodeRedVersion} on Node.js ${stdout.trim().replace(/^v/, '')}`, node, redJs };
}

/** Settings for a test Node-RED: loopback only, no prompts in the editor, logs on the console. */
const SETTINGS = `module.exports = {
  uiHost: '127.0.0.1',
  flowFile: 'flows.json',
  credentialSecret: false,
  logging: { console: { level: 'info', metrics: false, audit: false } },
  telemetry: { enabled: false, updateNotification: false },
  editorTheme: { projects: { enabled: false }, tours: false },
};
`;

/** Starts `runtime` on a free port with `userDir` and waits until its admin API answers. */
export async function startNodeRed(
  runtime: NodeRedRuntime,
  userDir: string,
  timeoutMs = 60_000,
): Promise<NodeRedProcess> {
  const settingsFile = path.join(userDir, 'settings.js');
  writeFileSync(settingsFile, SETTINGS);
  const port = await freePort();
  const nodeRed = new NodeRedProcess(
    `http://127.0.0.1:${port}`,
    runtime.node,
    [runtime.redJs, '--userDir', userDir, '--port', String(port), '--settings', settingsFile],
    { cwd: userDir },
  );
  await nodeRed.waitUntilServing('/nodes', timeoutMs);
  return nodeRed;
}
