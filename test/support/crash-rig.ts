import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { NodeRedProcess, temporaryDirectory } from './node-red-process.js';
import { unwrapEnvelope } from '../../nodes/lib/end-to-end-id.js';
import { freePort } from './ports.js';
import { linkedUserDirectory } from './user-directory.js';
import { delay, waitFor } from './wait.js';

const require = createRequire(__filename);

export interface RigOptions {
  /** More settings.js entries, as JavaScript source (`name: value,` …): values can be code, e.g. `global.gc`. */
  settings?: string;
  /** Options for node ahead of red.js, e.g. `--expose-gc`. */
  nodeOptions?: string[];
}

/**
 * A Node-RED process with this package, its own user directory and a flow,
 * that a test can SIGKILL and start again on the same directory.
 */
export class NodeRedRig {
  readonly userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-rig-'));
  port = 0;
  process: NodeRedProcess | undefined;
  starts = 0;

  constructor(
    flow: unknown[],
    private readonly options: RigOptions = {},
  ) {
    writeFileSync(path.join(this.userDir, 'flows.json'), JSON.stringify(flow));
    writeFileSync(
      path.join(this.userDir, 'settings.js'),
      `module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
        logging: { console: { level: 'warn', metrics: false, audit: false } },
        ${options.settings ?? ''} };\n`,
    );
  }

  /** Credentials of the flow's nodes, by node id (kept in clear: credentialSecret is false). */
  writeCredentials(credentials: Record<string, Record<string, string>>): void {
    writeFileSync(path.join(this.userDir, 'flows_cred.json'), JSON.stringify(credentials));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const red = require.resolve('node-red/red.js');
    const settings = path.join(this.userDir, 'settings.js');
    this.process = new NodeRedProcess(
      this.url,
      process.execPath,
      [
        ...(this.options.nodeOptions ?? []),
        red,
        '--userDir',
        this.userDir,
        '--port',
        String(this.port),
        '--settings',
        settings,
      ],
      { cwd: this.userDir },
    );
    this.starts++;
    await this.process.waitUntilServing('/flows', 60_000);
  }

  /** SIGKILL, as a power cut or the OOM killer would: no close handler runs. */
  async crash(): Promise<void> {
    const current = this.process;
    if (!current) return;
    current.kill();
    await current.exited;
  }

  async stop(): Promise<void> {
    await this.process?.stop(15_000);
  }
}

export interface DeliveryCount {
  accepted: number;
  delivered: number;
  missing: number[];
  duplicates: number;
}

/** Numbers delivered on a topic, counted as they arrive (inside a message-id envelope or not). */
export class NumberedSubscriber {
  private readonly seen = new Map<string, Map<number, number>>();
  client: MqttClient | undefined;

  async connect(port: number, filter: string, options: mqtt.IClientOptions = {}): Promise<void> {
    this.client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port,
      protocolVersion: 4,
      reconnectPeriod: 300,
      ...options,
    });
    this.client.on('message', (topic, payload) => {
      const bytes = unwrapEnvelope(payload)?.payload ?? payload;
      const n = (JSON.parse(bytes.toString()) as { n: number }).n;
      let counts = this.seen.get(topic);
      if (!counts) this.seen.set(topic, (counts = new Map()));
      counts.set(n, (counts.get(n) ?? 0) + 1);
    });
    await this.client.subscribeAsync(filter, { qos: 1 });
  }

  /** Leaves with a DISCONNECT: a persistent session queues what comes meanwhile. */
  async leave(): Promise<void> {
    await this.client?.endAsync();
  }

  /** Comes back on the same session after leave(). */
  comeBack(): void {
    this.client?.reconnect();
  }

  count(topic: string, accepted: Set<number>): DeliveryCount {
    const counts = this.seen.get(topic) ?? new Map<number, number>();
    const missing = [...accepted].filter((n) => !counts.has(n)).sort((a, b) => a - b);
    let duplicates = 0;
    for (const count of counts.values()) duplicates += count - 1;
    return { accepted: accepted.size, delivered: counts.size, missing, duplicates };
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

/**
 * Posts numbers first..first + total - 1 to `url` with `concurrency` requests at a time; a
 * number counts as accepted when the flow answered 200. A refused or broken
 * request (Node-RED down) is retried, as a producer with its own buffer would.
 */
export async function postNumbers(
  url: () => string,
  total: number,
  concurrency: number,
  stop: () => boolean,
  first = 1,
): Promise<Set<number>> {
  const accepted = new Set<number>();
  const queue = Array.from({ length: total }, (_, i) => i + first);
  const worker = async () => {
    while (queue.length > 0 && !stop()) {
      const n = queue.shift() as number;
      try {
        const response = await fetch(url(), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n }),
          signal: AbortSignal.timeout(10_000),
        });
        if (response.ok) accepted.add(n);
        else queue.push(n);
        await response.arrayBuffer();
      } catch {
        queue.push(n);
        await delay(100);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return accepted;
}

export { waitFor };
