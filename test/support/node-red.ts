import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(__filename);
// The test helper has no types; this is the part of it these tests use.
interface TestHelper {
  init(nodeRedPath: string, settings?: Record<string, unknown>): void;
  settings(settings: Record<string, unknown>): Record<string, unknown>;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  load(nodes: unknown[], flow: unknown[], credentials?: Record<string, unknown>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): RuntimeNode;
  setFlows(flow: unknown[], type: string, credentials?: Record<string, unknown>): Promise<void>;
  /** The spy on the runtime's log that helper.load() sets: every line any node logged since. */
  log(): { args: [{ level: number; id?: string; msg?: unknown }][] };
  /** supertest on the admin API the loaded nodes registered routes on. */
  request(): { post(path: string): { send(body: object): Promise<AdminResponse> } };
}

export interface AdminResponse {
  status: number;
  body: Record<string, unknown>;
}

/** A node as the runtime holds it: the part tests look at. */
export interface RuntimeNode {
  id: string;
  on(event: string, listener: (...args: never[]) => void): void;
  receive(msg: Record<string, unknown>): void;
  [key: string]: unknown;
}

export const helper: TestHelper = require('node-red-node-test-helper');
helper.init(require.resolve('node-red'));

/**
 * The helper is one per process, and mocha runs many test files in one process: settings a file gives
 * with helper.settings() (a userDir) would reach the files after it. Stopping the server, which every
 * file does last, puts back the runtime's own settings object, as a process of its own would have.
 */
{
  // The helper has no call that gives its initial settings back: settings() merges into a copy.
  const internals = helper as unknown as { _settings: Record<string, unknown> };
  const runtimeSettings = internals._settings;
  const stopServer = helper.stopServer.bind(helper);
  helper.stopServer = async () => {
    await stopServer();
    internals._settings = runtimeSettings;
  };
}

const root = path.resolve(__dirname, '..', '..');
const catalog = JSON.parse(readFileSync(path.join(root, 'locales', 'en-US', 'messages.json'), 'utf8'));
const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
/** The catalog's namespace in Node-RED: the id of the package's plugin, `<module>/<plugin>`. */
const CATALOG_NAMESPACE = `${packageJson.name}/${Object.keys(packageJson['node-red'].plugins)[0]}`;

/** The English text of a catalog key, interpolated as Node-RED's i18n does (`__name__`). */
export function translate(key: string, values: Record<string, unknown> = {}): string {
  let entry: unknown = catalog;
  for (const part of key.split('.')) entry = (entry as Record<string, unknown> | undefined)?.[part];
  if (typeof entry !== 'string') return key;
  return entry.replace(/__(\w+)__/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}

/**
 * RED._ as Node-RED gives it to this package's nodes, with the English catalog under the catalog's
 * namespace (the helper's own returns keys): a key of another namespace, or of none, comes back as
 * it is, as Node-RED gives back a key it does not find.
 */
function runtimeTranslate(key: string, values?: Record<string, unknown>): string {
  const prefix = `${CATALOG_NAMESPACE}:`;
  return key.startsWith(prefix) ? translate(key.slice(prefix.length), values) : key;
}

type NodeModule = (RED: Record<string, unknown>) => void;
/**
 * The node modules for helper.load: this package's, compiled, as the palette loads them, with the
 * English catalog (the helper's RED._ returns keys). Catch, Complete and Status nodes in a test flow
 * need no entry here: the helper loads those core nodes itself.
 */
export const allNodes = ['embedded-broker', 'broker-config', 'mqtt-in', 'mqtt-out', 'dedupe'].map((name) => {
  const nodeModule: NodeModule = require(path.join(root, 'dist', 'nodes', `${name}.js`));
  // The helper's mock runtime has no hooks; its flows trigger those of @node-red/util, handed over here.
  const hooks = require('@node-red/util').hooks;
  return (RED: Record<string, unknown>) =>
    nodeModule(Object.assign(Object.create(RED), { _: runtimeTranslate, hooks }));
});

let nextId = 0;
export function uid(prefix: string): string {
  return `${prefix}${(++nextId).toString(16).padStart(6, '0')}`;
}

/** Collects what a test node receives: wire a `helper` node to the node under test. */
export function collect(node: RuntimeNode): Record<string, unknown>[] {
  const received: Record<string, unknown>[] = [];
  node.on('input', ((msg: Record<string, unknown>) => received.push(msg)) as never);
  return received;
}

/** A node's status as the tests read it. */
export type NodeStatus = { fill?: string; shape?: string; text?: string };

/** Every status the node shows from now on, in order. */
export function watchStatus(node: RuntimeNode): NodeStatus[] {
  const statuses: NodeStatus[] = [];
  node.on('call:status', ((call: { args: [NodeStatus] }) => statuses.push(call.args[0])) as never);
  return statuses;
}

/** The text of every line the node logs at `level` from now on (an Error's message, or the text), in order. */
export function watchLog(node: RuntimeNode, level: 'log' | 'warn' | 'error'): string[] {
  const lines: string[] = [];
  node.on(`call:${level}`, ((call: { args: [unknown] }) =>
    lines.push(String((call.args[0] as Error)?.message ?? call.args[0]))) as never);
  return lines;
}

/** Log levels of @node-red/util's log, as the runtime's log spy records them. */
const LOG_LEVELS = { error: 20, warn: 30, log: 40 } as const;

/**
 * The text of every line logged at `level` since the flow was loaded, by node `id` (every node when
 * undefined): unlike watchLog, it has what a node said while it was being created.
 */
export function loggedLines(level: keyof typeof LOG_LEVELS, id?: string): string[] {
  return helper
    .log()
    .args.map(([entry]) => entry)
    .filter((entry) => entry.level === LOG_LEVELS[level] && (id === undefined || entry.id === id))
    .map((entry) => String((entry.msg as Error)?.message ?? entry.msg));
}

/**
 * Flow nodes that report every done() of the target nodes: errors reach the
 * `caught` helper node (through a Catch node), successes reach `completed`
 * (through a Complete node). One pair serves all targets: the test helper
 * registers a core node type once per flow node of that type, so a second
 * Catch node would fail to load.
 */
export function completionObservers(...targetIds: string[]): Record<string, unknown>[] {
  return [
    { id: 'observer-catch', type: 'catch', scope: targetIds, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper' },
    { id: 'observer-complete', type: 'complete', scope: targetIds, uncaught: false, wires: [['completed']] },
    { id: 'completed', type: 'helper' },
  ];
}
