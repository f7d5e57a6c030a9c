/**
 * The external clients of the `clients` job, in a process of their own (forked by
 * bench/worker.ts, which holds Node-RED and the embedded broker node): two plain MQTT.js
 * clients over TCP loopback, a subscriber and a publisher, with the job's MQTT version
 * and QoS. Messages go out by the throughput method (bench/measurement.ts) and are counted
 * as the subscriber gets them; the delivery goes back to the worker over IPC. Clients in
 * another process keep their cost (MQTT.js, mqtt-packet on their side) out of the broker's
 * process, as with any client of a broker.
 */
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { TOPIC } from './flows.js';
import { runWindowed, stamp, type Pipe } from './measurement.js';
import type { ClientsJob, ClientsMessage } from './types.js';

const PROBE = 1;
const WARMUP = 2;
const MEASURED = 3;

function connect(port: number, job: ClientsJob, role: 'pub' | 'sub'): Promise<MqttClient> {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port,
    protocolVersion: job.protocolVersion,
    clientId: `bench-${role}-v${job.protocolVersion}`,
    clean: true,
    keepalive: 60,
    // A lost connection must show as a stall, not be hidden by a reconnect.
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error(`the ${role} client's connection closed`)));
  });
}

/** Waits until one message makes the trip: the subscription is in place. */
async function ready(pipe: Pipe, base: Buffer, size: number) {
  for (let attempt = 0; attempt < 30; attempt++) {
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1000);
      pipe.onReceive((payload) => {
        if (payload[12] !== PROBE) return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    pipe.send(stamp(base, size, attempt, PROBE));
    if (await arrived) return;
  }
  throw new Error('no probe message reached the subscriber within 30 s');
}

function send(message: ClientsMessage): Promise<void> {
  return new Promise((resolve) => process.send?.(message, () => resolve()));
}

async function main(job: ClientsJob, port: number) {
  const base = Buffer.from(job.payloadHex, 'hex');
  const subscriber = await connect(port, job, 'sub');
  await subscriber.subscribeAsync(TOPIC, { qos: job.qos });
  const publisher = await connect(port, job, 'pub');
  let deliver: (payload: Buffer) => void = () => {};
  subscriber.on('message', (_topic, payload) => deliver(payload));
  const pipe: Pipe = {
    send: (payload) => publisher.publish(TOPIC, payload, { qos: job.qos }),
    onReceive: (handler) => {
      deliver = handler;
    },
  };
  await ready(pipe, base, job.size);
  const common = { window: job.window, size: job.size, base, stallMs: job.stallMs };
  await runWindowed(pipe, { ...common, messages: job.warmupMessages, phase: WARMUP, maxSeconds: 60 });
  const go = new Promise<void>((resolve) =>
    process.on('message', (message: ClientsMessage) => {
      if (message.type === 'go') resolve();
    }),
  );
  await send({ type: 'measuring' });
  await go;
  const session = job.profileDir ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const cpu = process.cpuUsage();
  const { delivery, capped } = await runWindowed(pipe, {
    ...common,
    messages: job.messages,
    phase: MEASURED,
    maxSeconds: job.maxSeconds,
  });
  const { user, system } = process.cpuUsage(cpu);
  if (session && job.profileDir) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(job.profileDir, { recursive: true });
    writeFileSync(path.join(job.profileDir, `${job.name}-clients.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  await send({ type: 'delivery', delivery, capped, cpuMicroseconds: user + system });
  await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
}

const [jobArgument, portArgument] = process.argv.slice(2);
main(JSON.parse(jobArgument ?? '{}') as ClientsJob, Number(portArgument)).then(
  () => process.exit(0),
  async (error: Error) => {
    await send({ type: 'failed', error: error.stack ?? String(error) });
    process.exit(1);
  },
);
