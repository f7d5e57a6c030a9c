/**
 * The offline backlog, measured in a plain Node-RED process: `node-red` (red.js
 * from node_modules, with --expose-gc) with its own user directory, this package
 * linked into it, and a flow that fills the out node's outbox from inside (see
 * backlogFlow). This process only starts it, drives it over HTTP and reads the
 * RSS of that process from /proc, so none of the bench's own memory is counted.
 */
import path from 'node:path';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { NodeRedRig } from '../test/support/crash-rig.js';
import { freePort } from '../test/support/ports.js';
import { delay } from '../test/support/wait.js';
import { BACKLOG_PATHS, BACKLOG_SETTINGS, OUT_ID, backlogFlow } from './flows.js';
import { mb } from './measurement.js';
import type { BacklogJob, BacklogResult, BacklogSample, Problems } from './types.js';

/** The generator's counts, as the progress endpoint returns them (see GENERATOR in flows.ts). */
interface BacklogState {
  messages: number;
  sent: number;
  queued: number;
  failed: number;
  failures: string[];
  /** Date.now() in the Node-RED process when the first message went out, and at the last completion. */
  startedAt: number;
  lastDoneAt: number;
}

interface Progress {
  backlog: BacklogState | null;
  outStatus: { connectedSeen: boolean };
  memory: NodeJS.MemoryUsage;
}

/** The gc endpoint's answer. */
interface GcAnswer {
  gcForced: boolean;
}

/** VmRSS and VmHWM (the peak since start, or since resetPeak) of process `pid`, in bytes, from the kernel. */
function kernelMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kB = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kB('VmRSS'), peak: kB('VmHWM') };
}

/** Sets VmHWM back to the current RSS (Linux ≥ 4.0), so it holds the peak of what follows; false when refused. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
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

/** The outbox's own count, from the meta record it keeps in LevelDB (read once Node-RED has closed it). */
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

async function call<T>(url: string, body?: object): Promise<T> {
  const response = await fetch(
    url,
    body
      ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {},
  );
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** Warnings and errors in Node-RED's console output (`[warn]`, `[error]`) and Node.js warnings. */
function problemsIn(output: string): Problems {
  const lines = output.split('\n');
  const errors = lines.filter((line) => line.includes('[error]'));
  const warnings = lines.filter((line) => line.includes('[warn]'));
  // Without the timestamp, so the same message logged twice counts once among the samples.
  const text = (line: string) => line.slice(Math.max(0, line.indexOf('['))).slice(0, 300);
  const samples = [...new Set([...errors, ...warnings].map(text))].slice(0, 5);
  return {
    logErrors: errors.length,
    logWarnings: warnings.length,
    logSamples: samples,
    brokerClientErrors: 0,
    brokerSamples: [],
    processWarnings: [...new Set(lines.filter((line) => /^\(node:\d+\) (\[\w+\] )?\w*Warning: /.test(line)))],
  };
}

/**
 * V8 shrinks its young generation (about 30 MB of RSS here) at a GC only once the
 * allocation it measured over its last 5 s is low: the settled figures come after
 * this many rounds of two forced gcs a second apart (it shrinks at the 5th or 6th),
 * so the idle figure and the one after the backlog describe the same state, that of
 * a process left alone for a while, as V8's memory reducer leaves it.
 */
const SETTLE_ROUNDS = 8;
/** A background thread returns the pages a GC freed to the system a moment later. */
const RELEASE_MS = 500;

/** RSS (kernel) and process.memoryUsage() of the Node-RED process once settled by forced gcs. */
async function settledMemory(pid: number, url: (endpoint: string) => string) {
  let gcForced = false;
  for (let round = 0; round < SETTLE_ROUNDS; round++) {
    await delay(1000);
    ({ gcForced } = await call<GcAnswer>(url(BACKLOG_PATHS.gc), {}));
  }
  await delay(RELEASE_MS);
  const kernel = kernelMemory(pid);
  const progress = await call<Progress>(url(BACKLOG_PATHS.progress));
  return { kernel, progress, gcForced };
}

/**
 * Starts Node-RED with the backlog flow and takes its settled idle RSS, then has
 * the flow queue `job.messages` messages while polling its progress and the
 * kernel's RSS figures, and weighs it again once settled.
 */
export async function offlineBacklog(job: BacklogJob): Promise<BacklogResult> {
  // Nothing listens on the port freePort() just freed.
  const deadPort = await freePort();
  const flow = backlogFlow(job.qos, deadPort, {
    persistence: 'queued',
    maxMessages: job.maxMessages,
    maxBytes: job.maxBytes,
  });
  const profile = job.profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${job.profileDir}`, `--cpu-prof-name=${job.name}.cpuprofile`]
    : [];
  const rig = new NodeRedRig(flow, { settings: BACKLOG_SETTINGS, nodeOptions: ['--expose-gc', ...profile] });
  const outboxDirectory = path.join(rig.userDir, 'durable-mqtt', 'outbox', OUT_ID);
  let result: BacklogResult | undefined;
  try {
    await rig.start();
    const nodeRed = rig.process;
    const pid = nodeRed?.child.pid;
    if (!nodeRed || pid === undefined) throw new Error('node-red did not start');
    await nodeRed.waitUntilServing(BACKLOG_PATHS.progress, 30_000);
    const url = (endpoint: string) => rig.url + endpoint;
    const idle = await settledMemory(pid, url);
    const peakReset = resetPeak(pid);
    const logStart = nodeRed.output.length;

    const started = Date.now();
    await call(url(BACKLOG_PATHS.start), { messages: job.messages, window: job.outstanding, size: job.size });
    const samples: BacklogSample[] = [];
    const step = Math.max(1, Math.round(job.messages / 10));
    let nextSample = step;
    let sampledPeak = 0;
    let completed = 0;
    let lastProgress = Date.now();
    let stalled = false;
    let progress: Progress;
    for (;;) {
      if (!nodeRed.running) throw new Error(`Node-RED exited while queuing:\n${nodeRed.output.slice(-2000)}`);
      progress = await call<Progress>(url(BACKLOG_PATHS.progress));
      const { rss } = kernelMemory(pid);
      sampledPeak = Math.max(sampledPeak, rss);
      const state = progress.backlog;
      const done = state ? state.queued + state.failed : 0;
      if (done > completed) {
        completed = done;
        lastProgress = Date.now();
      }
      if (done >= nextSample) {
        while (nextSample <= done) nextSample += step;
        samples.push({
          queued: done,
          t: Math.round((Date.now() - started) / 100) / 10,
          rssMB: mb(rss),
          heapUsedMB: mb(progress.memory.heapUsed),
        });
      }
      if (done >= job.messages) break;
      if (Date.now() - lastProgress > job.stallMs) {
        stalled = true;
        break;
      }
      await delay(100);
    }

    const before = kernelMemory(pid);
    const after = await settledMemory(pid, url);
    const state = progress.backlog;
    const seconds = state && state.lastDoneAt > 0 ? (state.lastDoneAt - state.startedAt) / 1000 : 0;
    const queued = state?.queued ?? 0;
    result = {
      kind: 'backlog',
      sent: state?.sent ?? 0,
      queued,
      failed: state?.failed ?? 0,
      failures: state?.failures ?? [],
      stalled,
      seconds,
      rate: seconds > 0 ? queued / seconds : 0,
      outboxBytes: directoryBytes(outboxDirectory),
      stayedOffline: !after.progress.outStatus.connectedSeen,
      samples,
      memory: {
        idleRssMB: mb(idle.kernel.rss),
        rssMB: mb(after.kernel.rss),
        reportedRssMB: mb(after.progress.memory.rss),
        peakRssMB: mb(Math.max(sampledPeak, before.rss, peakReset ? after.kernel.peak : 0)),
        peakFromKernel: peakReset,
        heapUsedMB: mb(after.progress.memory.heapUsed),
        rssBeforeGcMB: mb(before.rss),
        gcForced: idle.gcForced && after.gcForced,
      },
      problems: problemsIn(nodeRed.output.slice(logStart)),
    };
    return result;
  } finally {
    // SIGTERM: Node-RED closes the out node, which writes what is pending and closes the outbox.
    await rig.stop();
    // Into the job's log: what Node-RED printed (warn level and up).
    process.stderr.write(rig.process?.output ?? '');
    if (result) result.outboxCount = await storedCount(outboxDirectory);
  }
}
