/**
 * One benchmark job in its own process (started by bench/run.ts): a Node-RED
 * runtime with one variant's flow, a warm-up, the measured phase, and the
 * result sent back over IPC. A process per job keeps RSS figures and the
 * state of one variant (sockets, buffers, heap) out of the next one.
 */
import net from 'node:net';
import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { CONFIG_ID, DEDUPE_ID, OUT_ID, benchFlow, dedupeFlow, isConnected, offlineFlow } from './flows.js';
import { HEADER_BYTES, LatencyHistogram, runPaced, runWindowed, stamp } from './measurement.js';
import { startNodeRed, type BenchRuntime } from './runtime.js';
import type {
  BacklogJob,
  BacklogResult,
  BacklogSample,
  DedupeJob,
  DedupeResult,
  Job,
  JobResult,
  Memory,
  PacedJob,
  RssSample,
  ThroughputJob,
  WorkerMessage,
} from './types.js';

const PROBE = 1;
const WARMUP = 2;
const MEASURED = 3;

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const gc = (globalThis as { gc?: () => void }).gc;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the connection, then for one message to make the whole trip (the subscription is in place). */
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

/** Bytes of the files under `directory`, recursively; 0 when it does not exist. */
function directoryBytes(directory: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(directory, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const file = path.join(directory, entry.name);
    if (entry.isDirectory()) total += directoryBytes(file);
    else if (entry.isFile()) total += statSync(file).size;
  }
  return total;
}

/** The outbox's own count, from the meta record it keeps in LevelDB (read after the runtime closed it). */
async function storedCount(directory: string): Promise<number | undefined> {
  try {
    const { ClassicLevel } = await import('classic-level');
    const db = new ClassicLevel<string, string>(directory, { createIfMissing: false });
    try {
      const meta = await db.get('m');
      return meta === undefined ? undefined : (JSON.parse(meta) as { count: number }).count;
    } finally {
      await db.close();
    }
  } catch (error) {
    process.stderr.write(`could not read the outbox meta: ${(error as Error).message}\n`);
    return undefined;
  }
}

/**
 * Feeds `job.messages` messages to an out node that cannot connect, with at most
 * `job.outstanding` handed over and not yet done(): the node calls done() once a
 * message is on disk, so this side never holds more than that window of msgs.
 * Payloads are fresh random bytes after the header, so LevelDB cannot compress
 * them away and the size on disk is the incompressible case.
 */
async function backlog(runtime: BenchRuntime, job: BacklogJob, base: Buffer): Promise<BacklogResult> {
  const { pipe, problems } = runtime;
  const config = runtime.node(CONFIG_ID);
  const outboxDirectory = path.join(runtime.userDir, 'durable-mqtt', 'outbox', OUT_ID);
  // The flow has started; give the connection a moment to fail its first attempt.
  await delay(500);
  gc?.();
  const idleRss = process.memoryUsage().rss;
  problems.counting = true;
  let sent = 0;
  let queued = 0;
  let failed = 0;
  const failures: string[] = [];
  let stayedOffline = true;
  let peakRss = 0;
  const samples: BacklogSample[] = [];
  const step = Math.max(1, Math.round(job.messages / 10));
  let nextSample = step;
  let firstSend = 0n;
  let lastDone = 0n;
  let lastProgress = Date.now();
  const seconds = (until: bigint) => Number(until - firstSend) / 1e9;

  const outcome = await profiled(
    job,
    () =>
      new Promise<{ stalled: boolean }>((resolve) => {
        let finished = false;
        const finish = (stalled: boolean) => {
          if (finished) return;
          finished = true;
          clearInterval(timer);
          resolve({ stalled });
        };
        const pump = () => {
          while (sent < job.messages && sent - queued - failed < job.outstanding) {
            if (sent === 0) firstSend = process.hrtime.bigint();
            const payload = stamp(base, job.size, sent++, MEASURED);
            randomFillSync(payload, HEADER_BYTES);
            pipe.send(payload);
          }
          if (queued + failed === job.messages) finish(false);
        };
        // Completions come one by one; refilling in a later turn sends in batches, not one per done().
        let refill: NodeJS.Immediate | undefined;
        runtime.onOutComplete((error) => {
          if (error) {
            failed++;
            if (failures.length < 5 && !failures.includes(error.message)) failures.push(error.message);
          } else queued++;
          lastDone = process.hrtime.bigint();
          lastProgress = Date.now();
          if (queued + failed >= nextSample) {
            nextSample += step;
            const usage = process.memoryUsage();
            samples.push({
              queued,
              t: Math.round(seconds(lastDone) * 10) / 10,
              rssMB: mb(usage.rss),
              heapUsedMB: mb(usage.heapUsed),
            });
          }
          refill ??= setImmediate(() => {
            refill = undefined;
            pump();
          });
        });
        const timer = setInterval(() => {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
          if (isConnected(job.variant, config)) stayedOffline = false;
          if (Date.now() - lastProgress > job.stallMs) finish(true);
        }, 250);
        pump();
      }),
  );
  if (isConnected(job.variant, config)) stayedOffline = false;
  const rssBefore = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rssBefore);
  // Twice: the first pass leaves what finalizers free for the second.
  gc?.();
  gc?.();
  const after = process.memoryUsage();
  const elapsed = lastDone > 0n ? seconds(lastDone) : 0;
  return {
    kind: 'backlog',
    sent,
    queued,
    failed,
    failures,
    stalled: outcome.stalled,
    seconds: elapsed,
    rate: elapsed > 0 ? queued / elapsed : 0,
    outboxBytes: directoryBytes(outboxDirectory),
    stayedOffline,
    samples,
    memory: {
      idleRssMB: mb(idleRss),
      rssMB: mb(after.rss),
      peakRssMB: mb(peakRss),
      heapUsedMB: mb(after.heapUsed),
      rssBeforeGcMB: mb(rssBefore),
      gcForced: gc !== undefined,
    },
    problems: problems.snapshot(),
  };
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

async function main(job: Job): Promise<JobResult> {
  const base = Buffer.from(job.payloadHex, 'hex');
  if (job.kind === 'dedupe') {
    const runtime = await startNodeRed(dedupeFlow(job.maxEntries, job.persist), DEDUPE_ID);
    try {
      return await dedupe(runtime, job, base);
    } finally {
      await runtime.stop();
    }
  }
  const port = await freePort();
  if (job.kind === 'backlog') {
    // Nothing listens on `port`: the freed port of freePort().
    const runtime = await startNodeRed(
      offlineFlow(job.qos, port, {
        persistence: 'queued',
        maxMessages: job.maxMessages,
        maxBytes: job.maxBytes,
      }),
    );
    let result: BacklogResult | undefined;
    try {
      result = await backlog(runtime, job, base);
      return result;
    } finally {
      await runtime.stop(async (userDir) => {
        if (result)
          result.outboxCount = await storedCount(path.join(userDir, 'durable-mqtt', 'outbox', OUT_ID));
      });
    }
  }
  const settings = job.kind === 'throughput' ? { persistence: job.persistence } : {};
  const runtime = await startNodeRed(benchFlow(job.variant, job.qos, port, settings));
  try {
    await ready(runtime, job, base);
    return job.kind === 'throughput' ? await throughput(runtime, job, base) : await paced(runtime, job, base);
  } finally {
    await runtime.stop();
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
