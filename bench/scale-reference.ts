/**
 * A memory reference of the `scale` job in its worker: the same clients as against the brokers under
 * test (bench/scale-generators.ts), connecting to a reference server in a process of its own
 * (bench/scale-server.ts), measured the same way: that process's RSS before the clients and once
 * every client has its CONNACK, each after three forced gcs half a second apart. Nothing is
 * published: the figure is memory per connection alone.
 */
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { mb } from './measurement.js';
import { rssOf } from './mosquitto.js';
import { checkOpenFiles, connectClients, stopGenerators, type Generator } from './scale-generators.js';
import type { ScaleReferenceJob, ScaleReferenceResult, ScaleServerMessage } from './scale-types.js';

interface ReferenceServer {
  pid: number;
  port: number;
  /** Its RSS, bytes, after it collected garbage three times half a second apart. */
  settledRss(): Promise<number>;
  stop(): Promise<void>;
}

/** The next message of the server, of the type asked; its failure or its exit as an error. */
function nextMessage(child: ChildProcess, type: ScaleServerMessage['type']): Promise<ScaleServerMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ScaleServerMessage) => {
      if (message.type === 'failed') settle(() => reject(new Error(`reference server: ${message.error}`)));
      else if (message.type === type) settle(() => resolve(message));
    };
    const onExit = (code: number | null) =>
      settle(() => reject(new Error(`the reference server exited (${code}) before '${type}'`)));
    const settle = (then: () => void) => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      then();
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function startServer(job: ScaleReferenceJob): Promise<ReferenceServer> {
  const child = fork(path.join(__dirname, 'scale-server.ts'), [job.server], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // The driver stops a worker past its time with SIGTERM: its server must not outlive it.
  process.once('SIGTERM', () => {
    child.kill('SIGKILL');
    process.exit(1);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    const listening = await nextMessage(child, 'listening');
    if (listening.type !== 'listening') throw new Error(`unexpected '${listening.type}'`);
    const pid = child.pid as number;
    process.stderr.write(`reference server ${job.server}, pid ${pid}, port ${listening.port}\n`);
    return {
      pid,
      port: listening.port,
      async settledRss() {
        const settled = nextMessage(child, 'settled');
        child.send({ type: 'settle' } satisfies ScaleServerMessage);
        await settled;
        return rssOf(pid);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function runScaleReference(job: ScaleReferenceJob): Promise<ScaleReferenceResult> {
  checkOpenFiles(job.clients);
  const server = await startServer(job);
  const generators: Generator[] = [];
  try {
    const rssIdle = await server.settledRss();
    const { clients, connectSeconds } = await connectClients(
      generators,
      server.port,
      job.clients,
      job.intervalSeconds,
    );
    const rssConnected = await server.settledRss();
    return {
      kind: 'scale-reference',
      server: job.server,
      clients,
      connectSeconds,
      rssIdleMB: mb(rssIdle),
      rssConnectedMB: mb(rssConnected),
      perClientKB: Math.round(((rssConnected - rssIdle) / job.clients / 1024) * 10) / 10,
    };
  } finally {
    await stopGenerators(generators);
    await server.stop();
  }
}
