/**
 * One benchmark job in its own process (started by bench/run.ts): a Node-RED
 * runtime with one variant's flow, a warm-up, the measured phase, and the
 * result sent back over IPC. A process per job keeps RSS figures and the
 * state of one variant (sockets, buffers, heap) out of the next one. The offline
 * backlog is the exception: it measures a plain `node-red` process that this one
 * starts (bench/backlog.ts).
 */
import path from 'node:path';
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { freePort } from '../test/support/ports.js';
import { delay } from '../test/support/wait.js';
import { offlineBacklog } from './backlog.js';
import {
  BROKER_ID,
  CONFIG_ID,
  DEDUPE_ID,
  SINK_ID,
  benchFlow,
  brokerFlow,
  dedupeFlow,
  isConnected,
  sinkFlow,
} from './flows.js';
import { LatencyHistogram, mb, runPaced, runWindowed, stamp } from './measurement.js';
import { cpuSecondsOf, rssOf, startMosquitto } from './mosquitto.js';
import { startNodeRed, watchMonitor, type BenchRuntime } from './runtime.js';
import { runScale } from './scale.js';
import { runScaleReference } from './scale-reference.js';
import type {
  ClientsJob,
  ClientsMessage,
  DedupeJob,
  DedupeResult,
  Job,
  JobResult,
  Memory,
  MonitorJob,
  MonitorPhase,
  PacedJob,
  RssSample,
  ThroughputJob,
  WorkerMessage,
} from './types.js';

const PROBE = 1;
const WARMUP = 2;
const MEASURED = 3;

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Waits for the connection (Node-RED alone has none), then for one message to make
 * the whole trip (the subscription is in place).
 */
async function ready(runtime: BenchRuntime, job: Job, base: Buffer) {
  const deadline = Date.now() + 30_000;
  while (!isConnected(job.variant, runtime.node(CONFIG_ID))) {
    if (Date.now() > deadline) throw new Error('the broker config did not connect within 30 s');
    await delay(20);
  }
  for (let attempt = 0; attempt < 30; attempt++) {
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 1000);
      runtime.pipe.onReceive((payload) => {
        if (payload[12] !== PROBE) return;
        clearTimeout(timer);
        resolve(true);
      });
    });
    runtime.pipe.send(stamp(base, job.size, attempt, PROBE));
    if (await arrived) {
      runtime.pipe.onReceive(() => {});
      return;
    }
  }
  throw new Error('no probe message made it through the flow within 30 s');
}

/** Runs `measure` under the CPU profiler when the job asks for a profile. */
async function profiled<T>(job: Job, measure: () => Promise<T>): Promise<T> {
  if (!job.profileDir) return measure();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const result = await measure();
  const { profile } = await session.post('Profiler.stop');
  mkdirSync(job.profileDir, { recursive: true });
  const file = path.join(job.profileDir, `${job.name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  process.stderr.write(`CPU profile written to ${file}\n`);
  session.disconnect();
  return result;
}

function memory(idleRss: number, peakRss: number): Memory {
  const usage = process.memoryUsage();
  return {
    idleRssMB: mb(idleRss),
    rssMB: mb(usage.rss),
    peakRssMB: mb(Math.max(peakRss, usage.rss)),
    heapUsedMB: mb(usage.heapUsed),
  };
}

async function throughput(runtime: BenchRuntime, job: ThroughputJob, base: Buffer): Promise<JobResult> {
  const { pipe, problems } = runtime;
  const common = { window: job.window, size: job.size, base, stallMs: job.stallMs };
  const idleRss = process.memoryUsage().rss;
  problems.counting = true;
  await runWindowed(pipe, { ...common, messages: job.warmupMessages, phase: WARMUP, maxSeconds: 60 });
  let peakRss = 0;
  const { delivery, capped } = await profiled(job, () =>
    runWindowed(pipe, {
      ...common,
      messages: job.messages,
      phase: MEASURED,
      maxSeconds: job.maxSeconds,
      onTick: () => {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      },
    }),
  );
  return {
    kind: 'throughput',
    delivery,
    rate: delivery.seconds > 0 ? delivery.received / delivery.seconds : 0,
    capped,
    memory: memory(idleRss, peakRss),
    problems: problems.snapshot(),
  };
}

async function paced(runtime: BenchRuntime, job: PacedJob, base: Buffer): Promise<JobResult> {
  const { pipe, problems } = runtime;
  const common = { rate: job.rate, window: job.window, size: job.size, base, stallMs: job.stallMs };
  const idleRss = process.memoryUsage().rss;
  problems.counting = true;
  await runPaced(pipe, { ...common, seconds: job.warmupSeconds, phase: WARMUP });
  const histogram = new LatencyHistogram();
  const samples: RssSample[] = [];
  const started = Date.now();
  const sample = () => {
    if (job.kind === 'soak') gc?.();
    const usage = process.memoryUsage();
    samples.push({
      t: Math.round((Date.now() - started) / 100) / 10,
      rssMB: mb(usage.rss),
      heapUsedMB: mb(usage.heapUsed),
    });
  };
  let peakRss = 0;
  const sampler = setInterval(
    () => {
      if (job.kind === 'soak') sample();
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    },
    job.kind === 'soak' ? job.sampleEvery * 1000 : 250,
  );
  if (job.kind === 'soak') sample();
  const run = await profiled(job, () =>
    runPaced(pipe, { ...common, seconds: job.seconds, phase: MEASURED, histogram }),
  );
  clearInterval(sampler);
  if (job.kind === 'soak') sample();
  const outcome = {
    delivery: run.delivery,
    achievedRate: run.achievedRate,
    skipped: run.skipped,
    latency: histogram.stats(),
    memory: memory(idleRss, peakRss),
    problems: problems.snapshot(),
  };
  return job.kind === 'soak'
    ? { kind: 'soak', ...outcome, gcForced: gc !== undefined, samples }
    : { kind: 'latency', ...outcome };
}

/**
 * Phases with the monitor sampling and without, alternating in this one runtime after a warm-up
 * long enough for the JIT to settle (a fresh process's CPU per message falls by a quarter over its
 * first seconds, more than sampling could add); each phase's rate and CPU time per message.
 */
async function monitorPhases(runtime: BenchRuntime, job: MonitorJob, base: Buffer): Promise<JobResult> {
  const { pipe, problems } = runtime;
  const common = { window: job.window, size: job.size, base, stallMs: job.stallMs };
  const run = (phase: number, warmup = false) =>
    job.rate === undefined
      ? runWindowed(pipe, { ...common, messages: job.messages * (warmup ? 2 : 1), phase, maxSeconds: 60 })
      : runPaced(pipe, { ...common, rate: job.rate, seconds: job.seconds * (warmup ? 2 : 1), phase });
  await run(WARMUP, true);
  problems.counting = true;
  const phases: Record<'closed' | 'open', MonitorPhase[]> = { closed: [], open: [] };
  let phase = MEASURED;
  for (let round = 0; round < job.rounds; round++) {
    for (const sidebar of round % 2 === 0 ? (['closed', 'open'] as const) : (['open', 'closed'] as const)) {
      const stopWatching = sidebar === 'open' ? watchMonitor() : undefined;
      const cpuBefore = process.cpuUsage();
      const { delivery } = await run(phase++);
      const cpu = process.cpuUsage(cpuBefore);
      stopWatching?.();
      phases[sidebar].push({
        rate: delivery.seconds > 0 ? delivery.received / delivery.seconds : 0,
        cpuMicrosecondsPerMessage: (cpu.user + cpu.system) / Math.max(1, delivery.received),
        delivery,
      });
    }
  }
  return { kind: 'monitor', ...phases, problems: problems.snapshot() };
}

/** Distinct payloads (each carries its sequence number) into the dedupe node: every one is a first copy. */
async function dedupe(runtime: BenchRuntime, job: DedupeJob, base: Buffer): Promise<DedupeResult> {
  const { pipe, problems } = runtime;
  // Let the seen-set open before measuring the idle heap.
  await delay(500);
  gc?.();
  gc?.();
  const idle = process.memoryUsage();
  problems.counting = true;
  let peakRss = 0;
  const { delivery } = await profiled(job, () =>
    runWindowed(pipe, {
      window: job.window,
      size: job.size,
      base,
      stallMs: job.stallMs,
      messages: job.messages,
      phase: MEASURED,
      maxSeconds: 120,
      onTick: () => {
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      },
    }),
  );
  // Let the last group commits land before weighing the heap.
  await delay(1000);
  gc?.();
  gc?.();
  const after = process.memoryUsage();
  // Every key is distinct and the window outlasts the run: the node holds the last maxEntries of them.
  const keys = Math.min(job.maxEntries, delivery.received);
  return {
    kind: 'dedupe',
    delivery,
    rate: delivery.seconds > 0 ? delivery.received / delivery.seconds : 0,
    keys,
    idleHeapMB: mb(idle.heapUsed),
    heapMB: mb(after.heapUsed),
    bytesPerKey: keys > 0 ? Math.round((after.heapUsed - idle.heapUsed) / keys) : 0,
    memory: memory(idle.rss, peakRss),
    gcForced: gc !== undefined,
    problems: problems.snapshot(),
  };
}

/**
 * The embedded broker node serving the MQTT.js clients of another process (bench/clients.ts),
 * which sends and counts: this process holds Node-RED and the broker, whose RSS, problems and
 * (with --profile) CPU profile are the job's.
 */
async function externalClients(
  runtime: BenchRuntime,
  job: ClientsJob,
  port: number,
  mosquittoPid?: number,
): Promise<JobResult> {
  const { problems } = runtime;
  // Mosquitto's CPU time from the kernel (10 ms ticks), ours from Node.js (µs).
  const brokerCpuMicroseconds = () => {
    if (mosquittoPid !== undefined) return cpuSecondsOf(mosquittoPid) * 1e6;
    const { user, system } = process.cpuUsage();
    return user + system;
  };
  const brokerRss = () => (mosquittoPid !== undefined ? rssOf(mosquittoPid) : process.memoryUsage().rss);
  const child = fork(path.join(__dirname, 'clients.ts'), [JSON.stringify(job), String(port)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let idleRss = 0;
  let peakRss = 0;
  let cpu = brokerCpuMicroseconds();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, brokerRss());
  }, 250);
  try {
    const { delivery, capped, cpuMicroseconds } = await new Promise<
      Extract<ClientsMessage, { type: 'delivery' }>
    >((resolve, reject) => {
      let measured: ((message: Extract<ClientsMessage, { type: 'delivery' }>) => void) | undefined;
      child.on('message', (message: ClientsMessage) => {
        if (message.type === 'measuring') {
          idleRss = brokerRss();
          peakRss = 0;
          problems.counting = true;
          cpu = brokerCpuMicroseconds();
          profiled(
            job,
            () =>
              new Promise<Extract<ClientsMessage, { type: 'delivery' }>>((done) => {
                measured = done;
                child.send({ type: 'go' } satisfies ClientsMessage);
              }),
          ).then(resolve, reject);
        } else if (message.type === 'delivery') {
          cpu = brokerCpuMicroseconds() - cpu;
          measured?.(message);
        } else if (message.type === 'failed') reject(new Error(`client process: ${message.error}`));
      });
      child.on('exit', (code) => reject(new Error(`the client process exited (${code}) before its result`)));
    });
    return {
      kind: 'throughput',
      delivery,
      rate: delivery.seconds > 0 ? delivery.received / delivery.seconds : 0,
      capped,
      cpuPerMessage: {
        brokerMicroseconds: cpu / Math.max(1, delivery.received),
        clientsMicroseconds: cpuMicroseconds / Math.max(1, delivery.received),
      },
      memory:
        mosquittoPid === undefined
          ? memory(idleRss, peakRss)
          : {
              idleRssMB: mb(idleRss),
              rssMB: mb(brokerRss()),
              peakRssMB: mb(Math.max(peakRss, brokerRss())),
              heapUsedMB: 0,
            },
      problems: problems.snapshot(),
    };
  } finally {
    clearInterval(sampler);
    if (child.exitCode === null) child.kill();
  }
}

async function main(job: Job): Promise<JobResult> {
  if (job.kind === 'backlog') return offlineBacklog(job);
  if (job.kind === 'scale') return runScale(job);
  if (job.kind === 'scale-reference') return runScaleReference(job);
  if (job.kind === 'clients' && job.broker === 'mosquitto') {
    // The same clients against Mosquitto; the runtime (a flow of the sink alone) only collects problems.
    const mosquitto = await startMosquitto();
    const runtime = await startNodeRed(sinkFlow(), SINK_ID);
    try {
      return await externalClients(runtime, job, mosquitto.port, mosquitto.pid);
    } finally {
      await runtime.stop();
      await mosquitto.stop();
    }
  }
  if (job.kind === 'clients') {
    const port = await freePort();
    const runtime = await startNodeRed(brokerFlow(port), BROKER_ID);
    try {
      return await externalClients(runtime, job, port);
    } finally {
      await runtime.stop();
    }
  }
  const base = Buffer.from(job.payloadHex, 'hex');
  if (job.kind === 'dedupe') {
    const runtime = await startNodeRed(dedupeFlow(job.maxEntries, job.persist), DEDUPE_ID);
    try {
      return await dedupe(runtime, job, base);
    } finally {
      await runtime.stop();
    }
  }
  const mosquitto = job.broker === 'mosquitto' ? await startMosquitto() : undefined;
  try {
    const port = mosquitto?.port ?? (await freePort());
    const settings = {
      persistence: job.persistence,
      until: job.until,
      protocolVersion: job.protocolVersion,
      broker: job.broker,
    };
    const runtime = await startNodeRed(benchFlow(job.variant, job.qos, port, settings));
    try {
      await ready(runtime, job, base);
      if (job.kind === 'monitor') return await monitorPhases(runtime, job, base);
      return job.kind === 'throughput'
        ? await throughput(runtime, job, base)
        : await paced(runtime, job, base);
    } finally {
      await runtime.stop();
    }
  } finally {
    await mosquitto?.stop();
  }
}

function reply(message: WorkerMessage) {
  if (process.send) process.send(message, () => process.exit(0));
  else {
    console.log(JSON.stringify(message, null, 2));
    process.exit(0);
  }
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
main(job).then(
  (result) => reply({ type: 'result', result }),
  (error: Error) => reply({ type: 'failed', error: error.stack ?? String(error) }),
);
