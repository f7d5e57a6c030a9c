/**
 * A real Node-RED runtime inside the worker process, as `node-red` runs it:
 * core nodes from @node-red/nodes, this package found in the user directory's
 * node_modules (a link to the working tree, as `npm install <folder>` makes),
 * flows from flows.json. Only the editor and admin API are off.
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Pipe } from './measurement.js';
import type { Problems } from './types.js';
import { BROKER_ID, OUT_ID, SINK_ID, SINK_TYPE } from './flows.js';
import { linkedUserDirectory } from '../test/support/user-directory.js';

const require = createRequire(__filename);
export const ROOT = path.resolve(__dirname, '..');

/** A node as the runtime holds it: the part the bench uses. */
export interface RuntimeNode {
  id: string;
  on(event: string, listener: (...args: never[]) => void): void;
  receive(msg: Record<string, unknown>): void;
}

interface NodeRedLogEntry {
  level: number;
  msg: unknown;
  type?: string;
  id?: string;
}

// The embedding API of the node-red package: the part used here.
interface NodeRedApp {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  nodes: {
    registerType(set: string, type: string, constructor: (this: RuntimeNode, def: object) => void): void;
    createNode(node: RuntimeNode, def: object): void;
    getNode(id: string): RuntimeNode | null;
  };
}

// Node-RED log levels.
const ERROR = 20;
const WARN = 30;
/** Log lines copied to the worker's stderr (its log file), at most. */
const MAX_LOGGED = 50;

/** Warn and error entries of the Node-RED log, and what the embedded broker and Node.js complain about. */
export class ProblemLog {
  private errors = 0;
  private warnings = 0;
  private samples: string[] = [];
  private brokerErrors = 0;
  private brokerSamples: string[] = [];
  private readonly warningsSeen = new Set<string>();
  private logged = 0;
  /** Before this is set (startup, connecting), nothing is counted. */
  counting = false;

  constructor() {
    process.on('warning', (warning) => this.warningsSeen.add(`${warning.name}: ${warning.message}`));
  }

  log(entry: NodeRedLogEntry): void {
    if (entry.level > WARN) return;
    const text = `[${entry.type ?? 'runtime'}${entry.id ? ` ${entry.id}` : ''}] ${describe(entry.msg)}`;
    if (this.logged++ < MAX_LOGGED)
      process.stderr.write(`node-red ${entry.level <= ERROR ? 'error' : 'warn'} ${text}\n`);
    if (!this.counting) return;
    if (entry.level <= ERROR) this.errors++;
    else this.warnings++;
    if (this.samples.length < 5 && !this.samples.includes(text)) this.samples.push(text);
  }

  brokerClientError(clientId: string, error: Error): void {
    const text = `${clientId}: ${error.message}`;
    if (this.logged++ < MAX_LOGGED) process.stderr.write(`broker client error ${text}\n`);
    if (!this.counting) return;
    this.brokerErrors++;
    if (this.brokerSamples.length < 5 && !this.brokerSamples.includes(text)) this.brokerSamples.push(text);
  }

  snapshot(): Problems {
    return {
      logErrors: this.errors,
      logWarnings: this.warnings,
      logSamples: [...this.samples],
      brokerClientErrors: this.brokerErrors,
      brokerSamples: [...this.brokerSamples],
      processWarnings: [...this.warningsSeen],
    };
  }
}

/** Node-RED logs errors as encoded JSON ({"__enc__":true,...}); this gets the message back. */
function describe(msg: unknown): string {
  let text: string;
  if (typeof msg === 'string') text = msg;
  else if (msg instanceof Error) text = msg.message;
  else text = JSON.stringify(msg);
  if (text.startsWith('{"__enc__"')) {
    try {
      const decoded = JSON.parse(text) as { data?: { message?: string } };
      if (decoded.data?.message) text = decoded.data.message;
    } catch {
      // keep it as it is
    }
  }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export interface BenchRuntime {
  pipe: Pipe;
  problems: ProblemLog;
  node(id: string): RuntimeNode | null;
  /** Stops the runtime and removes its user directory. */
  stop(): Promise<void>;
}

/** Starts Node-RED with `flow`; the harness feeds node `inputId` (the out node, or the dedupe node). */
export async function startNodeRed(flow: object[], inputId = OUT_ID): Promise<BenchRuntime> {
  const userDir = linkedUserDirectory(mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-bench-')));
  writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));
  const problems = new ProblemLog();

  const RED: NodeRedApp = require('node-red');
  RED.init(http.createServer(), {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    editorTheme: { projects: { enabled: false } },
    // The core broker config connects before the embedded broker node listens: retry soon rather than in 5 s.
    mqttReconnectTime: 500,
    logging: {
      console: { level: 'off' },
      bench: {
        level: 'warn',
        metrics: false,
        audit: false,
        handler: () => (entry: NodeRedLogEntry) => problems.log(entry),
      },
    },
  });

  let deliver: (payload: Buffer) => void = () => {};
  RED.nodes.registerType('bench', SINK_TYPE, function (this: RuntimeNode, def: object) {
    RED.nodes.createNode(this, def);
    this.on('input', ((msg: { payload: Buffer }, _send: unknown, done: () => void) => {
      deliver(msg.payload);
      done();
    }) as never);
  });
  try {
    await RED.start();
    const deadline = Date.now() + 30_000;
    while (!RED.nodes.getNode(inputId) || !RED.nodes.getNode(SINK_ID)) {
      if (Date.now() > deadline) throw new Error('the flow did not start within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } catch (error) {
    rmSync(userDir, { recursive: true, force: true });
    throw error;
  }
  const out = RED.nodes.getNode(inputId) as RuntimeNode;
  watchBroker(problems);

  return {
    pipe: {
      send: (payload) => out.receive({ payload }),
      onReceive: (handler) => {
        deliver = handler;
      },
    },
    problems,
    node: (id) => RED.nodes.getNode(id),
    async stop() {
      await Promise.race([RED.stop(), new Promise((resolve) => setTimeout(resolve, 5000))]);
      rmSync(userDir, { recursive: true, force: true });
    },
  };
}

interface EmbeddedBrokerLike {
  on(event: 'client-error', listener: (clientId: string, error: Error) => void): void;
}

/** Subscribes to the embedded broker node's client errors (a client dropped by Aedes, and why). */
function watchBroker(problems: ProblemLog) {
  // The same module instance the node loaded: Node.js resolves the user directory's link to the working tree.
  const registry = require(path.join(ROOT, 'dist', 'nodes', 'lib', 'broker', 'registry.js')) as {
    embeddedBrokers: {
      get(id: string): unknown;
      on(event: 'available', listener: (id: string) => void): void;
    };
  };
  const attach = () => {
    const broker = registry.embeddedBrokers.get(BROKER_ID) as EmbeddedBrokerLike | undefined;
    broker?.on('client-error', (clientId, error) => problems.brokerClientError(clientId, error));
    return broker !== undefined;
  };
  if (!attach()) {
    registry.embeddedBrokers.on('available', (id) => {
      if (id === BROKER_ID) attach();
    });
  }
}

/**
 * Samples as the editor's durable mqtt sidebar does while open: a watch renewed as the open tab
 * renews it, each snapshot serialized as comms would send it. Returns what stops it.
 */
export function watchMonitor(): () => void {
  // The registries' own module instances, as watchBroker's: the nodes report to them.
  const { MonitorSampler } = require(
    path.join(ROOT, 'dist', 'nodes', 'node-red', 'monitor', 'sampler.js'),
  ) as typeof import('../nodes/node-red/monitor/sampler.js');
  const { WATCH_RENEW_MS } = require(
    path.join(ROOT, 'dist', 'nodes', 'lib', 'monitor-protocol.js'),
  ) as typeof import('../nodes/lib/monitor-protocol.js');
  const sampler = new MonitorSampler((snapshot) => JSON.stringify(snapshot));
  sampler.watch();
  const renew = setInterval(() => sampler.watch(), WATCH_RENEW_MS);
  return () => {
    clearInterval(renew);
    sampler.stop();
  };
}
