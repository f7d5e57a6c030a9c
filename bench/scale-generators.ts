/**
 * The scale job's load generator processes (bench/scale-load.ts) as the worker drives them: started
 * with half of the clients each, awaited until every client has its CONNACK, stopped. Shared by the
 * brokers under test (bench/scale.ts) and the memory references (bench/scale-reference.ts).
 */
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { delay } from '../test/support/wait.js';
import { openFilesLimit } from './mosquitto.js';
import type { ScaleLoadMessage, ScaleLoadOrder } from './scale-types.js';

/** Load generator processes: each holds half of the clients. */
const GENERATORS = 2;
/** File descriptors a process needs beyond one per connection (its modules, Node-RED's, stdio, pipes). */
const SPARE_DESCRIPTORS = 500;

/** Refuses to start when the open-files limit cannot hold the connections, and says what to do. */
export function checkOpenFiles(clients: number) {
  const limit = openFilesLimit();
  const needed = clients + SPARE_DESCRIPTORS;
  if (limit < needed)
    throw new Error(
      `ulimit -n is ${limit}: the broker process needs at least ${needed} open files for ${clients} clients; ` +
        `raise it (ulimit -n ${Math.max(20_000, needed)}) before npm run bench, or lower --scale-clients`,
    );
}

export interface Generator {
  child: ChildProcess;
  /** The next message of the generator, of the type asked. */
  next<T extends ScaleLoadMessage['type']>(type: T): Promise<Extract<ScaleLoadMessage, { type: T }>>;
}

function startGenerator(order: ScaleLoadOrder): Generator {
  const child = fork(path.join(__dirname, 'scale-load.ts'), [JSON.stringify(order)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const received: ScaleLoadMessage[] = [];
  const waiting: (() => void)[] = [];
  child.on('message', (message: ScaleLoadMessage) => {
    received.push(message);
    for (const wake of waiting.splice(0)) wake();
  });
  child.on('exit', () => {
    for (const wake of waiting.splice(0)) wake();
  });
  return {
    child,
    async next(type) {
      for (;;) {
        const failed = received.find((m) => m.type === 'failed');
        if (failed?.type === 'failed') throw new Error(`load generator: ${failed.error}`);
        const index = received.findIndex((m) => m.type === type);
        if (index >= 0) return received.splice(index, 1)[0] as never;
        if (child.exitCode !== null)
          throw new Error(`a load generator exited (${child.exitCode}) before '${type}'`);
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },
  };
}

/**
 * Starts the generators of `clients` clients into `generators` (for the caller to stop whatever
 * happens) and waits until every client has its CONNACK: how many did, and how long it took.
 */
export async function connectClients(
  generators: Generator[],
  port: number,
  clients: number,
  intervalSeconds: number,
): Promise<{ clients: number; connectSeconds: number }> {
  const connectStarted = Date.now();
  const share = Math.ceil(clients / GENERATORS);
  for (let first = 0; first < clients; first += share)
    generators.push(
      startGenerator({
        port,
        first,
        count: Math.min(share, clients - first),
        totalClients: clients,
        intervalSeconds,
      }),
    );
  const connected = await Promise.all(generators.map((g) => g.next('connected')));
  const connectSeconds = (Date.now() - connectStarted) / 1000;
  process.stderr.write(`${clients} clients connected in ${connectSeconds.toFixed(1)} s\n`);
  return { clients: connected.reduce((sum, c) => sum + c.clients, 0), connectSeconds };
}

/** Asks each generator to disconnect its clients and exit; kills those still there after 10 s. */
export async function stopGenerators(generators: Generator[]) {
  for (const g of generators)
    if (g.child.exitCode === null) g.child.send({ type: 'stop' } satisfies ScaleLoadMessage);
  await Promise.race([
    Promise.all(
      generators.map((g) => (g.child.exitCode === null ? new Promise((r) => g.child.once('exit', r)) : 0)),
    ),
    delay(10_000),
  ]);
  for (const g of generators) if (g.child.exitCode === null) g.child.kill();
}
