/**
 * The `scale` job in its worker: a broker under many TCP clients of other processes, each
 * publishing one QoS 1 message every few seconds to its own topic, and one in node of this
 * package in Node-RED subscribed to `+/#`, counting each message once. The broker is the
 * embedded broker node of the same Node-RED (this process), or a Mosquitto started here, which
 * the in node reaches through a broker config over TCP. The figures are the broker process's:
 * its RSS before and after the clients connect, and its CPU time over the window.
 */
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import mqtt from 'mqtt';
import { delay } from '../test/support/wait.js';
import { freePort } from '../test/support/ports.js';
import { BROKER_ID, CONFIG_ID, IN_ID, SINK_ID, SINK_TYPE } from './flows.js';
import { mb } from './measurement.js';
import { cpuSecondsOf, rssOf, startMosquitto, type BenchMosquitto } from './mosquitto.js';
import { startNodeRed, type BenchRuntime } from './runtime.js';
import { checkOpenFiles, connectClients, stopGenerators, type Generator } from './scale-generators.js';
import type { ScaleJob, ScaleLoadMessage, ScaleResult } from './scale-types.js';

/** After the window, the subscriber has this long to get the last messages. */
const DRAIN_MS = 15_000;
const PROBE_TOPIC = 'probe/scale';

const gc = (globalThis as { gc?: () => void }).gc;

/** The embedded broker node (ours) or a broker config to Mosquitto, and the in node on `+/#` feeding the sink. */
function scaleFlow(job: ScaleJob, port: number): object[] {
  const tab = 'bench-tab';
  const broker =
    job.broker === 'embedded'
      ? [
          {
            id: BROKER_ID,
            z: tab,
            type: 'durable-mqtt-embedded-broker',
            port,
            bind: '127.0.0.1',
            wsPath: '',
            maxConnections: String(job.clients + 100),
          },
        ]
      : [];
  const transport =
    job.broker === 'embedded'
      ? { transport: 'embedded', embedded: BROKER_ID }
      : { transport: 'mqtt', host: '127.0.0.1', port: String(port) };
  let x = 0;
  return [
    { id: tab, type: 'tab', label: `bench scale ${job.broker}` },
    ...broker,
    {
      id: CONFIG_ID,
      type: 'durable-mqtt-broker-config',
      ...transport,
      protocolVersion: '4',
      clientId: 'bench-scale-subscriber',
      keepalive: '60',
      cleanSession: true,
    },
    {
      id: IN_ID,
      z: tab,
      type: 'durable-mqtt-in',
      broker: CONFIG_ID,
      topic: '+/#',
      qos: 1,
      datatype: 'buffer',
      wires: [[SINK_ID]],
    },
    { id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] },
  ].map((node) => ('z' in node ? { ...node, x: (x += 150), y: 100 } : node));
}

/** RSS once V8 has collected what it can (ours), and after a pause for both. */
async function settledRss(pid: number | 'self'): Promise<number> {
  for (let round = 0; round < 3; round++) {
    gc?.();
    await delay(500);
  }
  return rssOf(pid);
}

/** The probe client, once the broker listens: the flow starts before the embedded broker node does. */
async function connectProbe(port: number): Promise<mqtt.MqttClient> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        clientId: 'bench-scale-probe',
        reconnectPeriod: 0,
      });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(200);
    }
  }
}

/** Publishes probes through the broker until the in node delivers one: its subscription is in place. */
async function waitForSubscription(runtime: BenchRuntime, port: number) {
  const probe = await connectProbe(port);
  try {
    for (let attempt = 0; attempt < 30; attempt++) {
      const arrived = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        runtime.pipe.onReceive((payload) => {
          if (payload.toString() !== PROBE_TOPIC) return;
          clearTimeout(timer);
          resolve(true);
        });
      });
      await probe.publishAsync(PROBE_TOPIC, PROBE_TOPIC, { qos: 1 });
      if (await arrived) return;
    }
    throw new Error('no probe message reached the in node within 30 s');
  } finally {
    await probe.endAsync();
    runtime.pipe.onReceive(() => {});
  }
}

/** The V8 sampling profiler of this process (200 µs), as the other jobs run it. */
async function startProfiler() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(file: string) {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

export async function runScale(job: ScaleJob): Promise<ScaleResult> {
  checkOpenFiles(job.clients);
  let mosquitto: BenchMosquitto | undefined;
  let runtime: BenchRuntime | undefined;
  const generators: Generator[] = [];
  try {
    const port = job.broker === 'embedded' ? await freePort() : (mosquitto = await startMosquitto()).port;
    if (mosquitto)
      process.stderr.write(`mosquitto ${mosquitto.version}, pid ${mosquitto.pid}, port ${port}\n`);
    runtime = await startNodeRed(scaleFlow(job, port), IN_ID);
    const pid = mosquitto?.pid ?? 'self';
    await waitForSubscription(runtime, port);
    const arrived = new Set<string>();
    let duplicates = 0;
    runtime.pipe.onReceive((payload) => {
      const key = payload.toString();
      if (arrived.has(key)) duplicates++;
      else arrived.add(key);
    });
    const rssIdle = await settledRss(pid);

    const { clients, connectSeconds } = await connectClients(
      generators,
      port,
      job.clients,
      job.intervalSeconds,
    );
    const rssConnected = await settledRss(pid);

    runtime.problems.counting = true;
    let peakRss = rssConnected;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 1000);
    // The embedded broker's process is this one: its profile of the window, with --profile.
    const profiler = job.profileDir && !mosquitto ? await startProfiler() : undefined;
    const cpuBefore = cpuSecondsOf(pid);
    const windowStarted = Date.now();
    for (const g of generators) g.child.send({ type: 'go', seconds: job.seconds } satisfies ScaleLoadMessage);
    const published = await Promise.all(generators.map((g) => g.next('published')));
    const sent = published.reduce((sum, p) => sum + p.sent, 0);
    const drainUntil = Date.now() + DRAIN_MS;
    while (arrived.size < sent && Date.now() < drainUntil) await delay(100);
    const windowSeconds = (Date.now() - windowStarted) / 1000;
    const cpuSeconds = cpuSecondsOf(pid) - cpuBefore;
    if (profiler && job.profileDir) await profiler.stop(path.join(job.profileDir, `${job.name}.cpuprofile`));
    clearInterval(sampler);
    const rssAfter = rssOf(pid);
    return {
      kind: 'scale',
      broker: job.broker,
      clients,
      connectSeconds,
      rssIdleMB: mb(rssIdle),
      rssConnectedMB: mb(rssConnected),
      rssAfterMB: mb(rssAfter),
      peakRssMB: mb(Math.max(peakRss, rssAfter)),
      perClientKB: Math.round(((rssConnected - rssIdle) / job.clients / 1024) * 10) / 10,
      cpuSeconds,
      cpuPercent: (cpuSeconds / windowSeconds) * 100,
      windowSeconds,
      sent,
      acknowledged: published.reduce((sum, p) => sum + p.acknowledged, 0),
      arrived: arrived.size,
      missing: sent - arrived.size,
      duplicates,
      lateMs: Math.max(...published.map((p) => p.lateMs)),
      unexpectedCloses: published.reduce((sum, p) => sum + p.unexpectedCloses, 0),
      errors: published.flatMap((p) => p.errors).slice(0, 5),
      problems: runtime.problems.snapshot(),
    };
  } finally {
    await stopGenerators(generators);
    await runtime?.stop();
    await mosquitto?.stop();
  }
}
