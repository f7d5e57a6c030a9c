/**
 * `npm run bench`: this package's nodes and the Node-RED core MQTT nodes, side
 * by side in one run, through this package's embedded broker node. Each job
 * (one case, one variant) runs in a fresh worker process (bench/worker.ts);
 * the table goes to the terminal, bench/results/latest.json and latest.md.
 * `npm run bench -- --help` lists the options.
 */
import path from 'node:path';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machine } from './machine.js';
import { median, slope } from './measurement.js';
import {
  caseLabel,
  problemLines,
  renderMarkdown,
  renderText,
  soakPersistenceLabel,
  type BacklogSummary,
  type BenchReport,
  type CaseSummary,
  type Ceiling,
  type DurableSummary,
  type Settings,
  type SoakSummary,
  type Target,
  type VariantThroughput,
} from './report.js';
import {
  MQTT_VARIANTS,
  PERSISTENCE_MODES,
  VARIANTS,
  VARIANT_LABELS,
  type BacklogJob,
  type BacklogResult,
  type DedupeJob,
  type DedupeResult,
  type Job,
  type JobResult,
  type LatencyResult,
  type PacedJob,
  type Persistence,
  type QoS,
  type SoakResult,
  type ThroughputJob,
  type ThroughputResult,
  type Variant,
  type WorkerMessage,
} from './types.js';

const ROOT = path.resolve(__dirname, '..');

/** Message counts picked so each case runs a few seconds on a 2-core machine; --scale multiplies them. */
const CASES: { name: string; qos: QoS; size: number; messages: number }[] = [
  { name: 'qos0-64b', qos: 0, size: 64, messages: 200_000 },
  { name: 'qos0-4kb', qos: 0, size: 4096, messages: 120_000 },
  { name: 'qos1-64b', qos: 1, size: 64, messages: 120_000 },
  { name: 'qos1-4kb', qos: 1, size: 4096, messages: 50_000 },
  { name: 'qos2-64b', qos: 2, size: 64, messages: 50_000 },
  { name: 'qos2-4kb', qos: 2, size: 4096, messages: 40_000 },
];

/**
 * Our out node with each persistence, through the embedded broker (in-process): the
 * same method and N as the throughput cases of the same name.
 */
const DURABLE_CASES: { name: string; qos: QoS; size: number; messages: number }[] = [
  { name: 'qos1-64b', qos: 1, size: 64, messages: 120_000 },
  { name: 'qos2-64b', qos: 2, size: 64, messages: 50_000 },
];
/** Goals of queued / none and acknowledged / none at QoS 1, 64 B. */
const DURABLE_GOALS: Partial<Record<Persistence, number>> = { queued: 0.5, acknowledged: 0.4 };

/** Offline backlog: messages queued by default, most done() outstanding, and the RSS goal. */
const BACKLOG_MESSAGES = 1_000_000;
const BACKLOG_OUTSTANDING = 10_000;
const BACKLOG_RSS_GOAL_MB = 200;

/** Dedupe node: distinct keys through it, five times its bound, so it evicts for most of the run. */
const DEDUPE_MAX_ENTRIES = 100_000;
const DEDUPE_MESSAGES = 500_000;

/**
 * Messages of every Node-RED alone case: it moves 300,000–500,000 msg/s here, so a case's
 * N (50,000 at QoS 2) would be measured over a tenth of a second, low and unsteady.
 */
const FLOOR_MESSAGES = 1_000_000;

/**
 * Ours embedded moves 150,000–300,000 msg/s since its in-process link: it sends this many times
 * a case's N, so its phase lasts seconds as the others' do, not a fraction of one.
 */
const EMBEDDED_MESSAGES_FACTOR = 5;

function messagesOf(variant: Variant, caseMessages: number): number {
  if (variant === 'floor') return FLOOR_MESSAGES;
  return variant === 'embedded' ? caseMessages * EMBEDDED_MESSAGES_FACTOR : caseMessages;
}

/** Ours/core goals at 64 B through the embedded broker, from the issue; Node-RED alone / core is their ceiling. */
const RATIO_GOALS: Record<QoS, number> = { 0: 5, 1: 4, 2: 3 };
const P99_GOAL_MS = 5;

const HELP = `npm run bench -- [options]

  --repeat N            run each throughput case N times, report the median (1)
  --soak SECONDS        leak check at --soak-rate msg/s, QoS 1, 64 B; 0 skips it (300)
  --soak-rate N         messages per second during the soak (10000)
  --soak-variant V      embedded, tcp or core (embedded)
  --soak-persistence P  our out node's persistence during the soak: none, queued or acknowledged (none)
  --cases LIST          throughput cases, comma-separated: ${CASES.map((c) => c.name).join(',')}
  --variants LIST       embedded,tcp,core,floor (all); floor is Node-RED alone, no MQTT (throughput only)
  --skip LIST           throughput, durable, backlog, dedupe, latency, soak
  --backlog N           messages queued by an out node that cannot connect (${BACKLOG_MESSAGES}); 0 skips it
  --window N            most messages sent but not yet received (500)
  --scale X             multiply every case's message count (1)
  --latency-seconds S   length of the latency run (5)
  --latency-rate N      messages per second of the latency run (1000)
  --profile             CPU profile of each measured phase into bench/results/profiles/
  --out DIR             where results go (bench/results)
`;

/** Messages sent before measuring: a tenth of the run, within 1,000 to 5,000. */
function warmupFor(messages: number): number {
  return Math.min(5000, Math.max(1000, Math.round(messages / 10)));
}

/** Adds a run's result to those of its case, by variant or persistence mode (repeats accumulate). */
function appendResult<K>(
  runs: Map<string, Map<K, ThroughputResult[]>>,
  caseName: string,
  key: K,
  result: ThroughputResult,
): void {
  let perCase = runs.get(caseName);
  if (!perCase) runs.set(caseName, (perCase = new Map()));
  perCase.set(key, [...(perCase.get(key) ?? []), result]);
}

function options() {
  const { values } = parseArgs({
    options: {
      repeat: { type: 'string', default: '1' },
      soak: { type: 'string', default: '300' },
      'soak-rate': { type: 'string', default: '10000' },
      'soak-variant': { type: 'string', default: 'embedded' },
      'soak-persistence': { type: 'string', default: 'none' },
      cases: { type: 'string' },
      variants: { type: 'string' },
      skip: { type: 'string', default: '' },
      backlog: { type: 'string', default: String(BACKLOG_MESSAGES) },
      window: { type: 'string', default: '500' },
      scale: { type: 'string', default: '1' },
      'latency-seconds': { type: 'string', default: '5' },
      'latency-rate': { type: 'string', default: '1000' },
      profile: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const number = (name: keyof typeof values, min: number) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  const list = (value: string | undefined, allowed: readonly string[], name: string) => {
    if (!value) return [...allowed];
    const items = value
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    for (const item of items) if (!allowed.includes(item)) throw new Error(`--${name}: unknown "${item}"`);
    return items;
  };
  const soakVariant = values['soak-variant'] as Variant;
  if (!MQTT_VARIANTS.includes(soakVariant)) throw new Error('--soak-variant must be embedded, tcp or core');
  const soakPersistence = values['soak-persistence'] as Persistence;
  if (!PERSISTENCE_MODES.includes(soakPersistence))
    throw new Error('--soak-persistence must be none, queued or acknowledged');
  if (soakPersistence !== 'none' && soakVariant === 'core')
    throw new Error('--soak-persistence applies to our out node, not to core');
  return {
    repeat: Math.round(number('repeat', 1)),
    soakSeconds: number('soak', 0),
    soakRate: number('soak-rate', 1),
    soakVariant,
    soakPersistence,
    cases: CASES.filter((c) =>
      list(
        values.cases,
        CASES.map((k) => k.name),
        'cases',
      ).includes(c.name),
    ),
    variants: list(values.variants, VARIANTS, 'variants') as Variant[],
    skip: new Set(
      list(
        values.skip || 'none',
        ['none', 'throughput', 'durable', 'backlog', 'dedupe', 'latency', 'soak'],
        'skip',
      ),
    ),
    backlog: Math.round(number('backlog', 0)),
    window: Math.round(number('window', 1)),
    scale: number('scale', 0.001),
    latencySeconds: number('latency-seconds', 1),
    latencyRate: number('latency-rate', 1),
    profile: values.profile,
    out: path.resolve(values.out),
  };
}

/** Markdown as the project's Prettier settings format it, so it pastes into the README as is. */
async function formatMarkdown(markdown: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const config = await prettier.resolveConfig(path.join(ROOT, 'README.md'));
    return await prettier.format(markdown, { ...config, parser: 'markdown' });
  } catch {
    return `${markdown}\n`;
  }
}

/** Runs one job in a worker process; its stdout and stderr go to a log file. */
function runJob(job: Job, logDir: string, timeoutMs: number): Promise<JobResult> {
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${job.name}.log`);
  const log = openSync(logFile, 'w');
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'worker.ts'), [JSON.stringify(job)], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', log, log, 'ipc'],
      cwd: ROOT,
    });
    let outcome: WorkerMessage | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      outcome ??= { type: 'failed', error: `no result within ${Math.round(timeoutMs / 1000)} s (killed)` };
      // SIGTERM first: a worker that started a Node-RED process of its own stops it on SIGTERM.
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
    }, timeoutMs);
    child.on('message', (message: WorkerMessage) => {
      outcome ??= message;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      closeSync(log);
      const result = outcome ?? {
        type: 'failed',
        error: `worker exited (${signal ?? code}) without a result`,
      };
      if (result.type === 'result') resolve(result.result);
      else reject(new Error(`${result.error.split('\n')[0]} (log: ${path.relative(ROOT, logFile)})`));
    });
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main() {
  const o = options();
  /** A message count times --scale, at least 1,000. */
  const scaled = (messages: number) => Math.max(1000, Math.round(messages * o.scale));
  const startedAt = new Date();
  const payload = randomBytes(Math.max(4096, ...o.cases.map((c) => c.size)));
  const stallMs = 5000;
  const logDir = path.join(o.out, 'logs');
  const profileDir = o.profile ? path.join(o.out, 'profiles') : undefined;
  const settings: Settings = {
    window: o.window,
    repeat: o.repeat,
    scale: o.scale,
    stallMs,
    latencyRate: o.latencyRate,
    latencySeconds: o.latencySeconds,
    soakSeconds: o.skip.has('soak') ? 0 : o.soakSeconds,
    soakRate: o.soakRate,
    soakVariant: o.soakVariant,
    soakPersistence: o.soakPersistence,
    backlogMessages: o.skip.has('backlog') ? 0 : o.backlog,
    backlogOutstanding: BACKLOG_OUTSTANDING,
    floorMessages: scaled(FLOOR_MESSAGES),
    embeddedMessagesFactor: EMBEDDED_MESSAGES_FACTOR,
  };
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    machine: machine(ROOT),
    settings,
    throughput: [],
    durable: [],
    dedupe: [],
    latency: {},
    targets: [],
    ceilings: [],
    problems: [],
    failures: [],
  };
  const base = {
    payloadHex: payload.toString('hex'),
    window: o.window,
    stallMs,
    profileDir,
  };

  const planned: { job: Job; timeoutMs: number; done: (result: JobResult) => void }[] = [];
  const runs = new Map<string, Map<Variant, ThroughputResult[]>>();
  if (!o.skip.has('throughput')) {
    for (let repeat = 0; repeat < o.repeat; repeat++) {
      o.cases.forEach((c, index) => {
        // Rotate the order of the variants from case to case, so none always runs first.
        const order = o.variants.map((_, i) => o.variants[(i + index + repeat) % o.variants.length]);
        for (const variant of order) {
          const messages = scaled(messagesOf(variant, c.messages));
          const job: ThroughputJob = {
            ...base,
            kind: 'throughput',
            name: `throughput-${c.name}-${variant}${o.repeat > 1 ? `-${repeat + 1}` : ''}`,
            variant,
            qos: c.qos,
            size: c.size,
            messages,
            warmupMessages: warmupFor(messages),
            maxSeconds: 30,
          };
          planned.push({
            job,
            timeoutMs: 150_000,
            done: (result) => {
              appendResult(runs, c.name, variant, result as ThroughputResult);
            },
          });
        }
      });
    }
  }
  const durableRuns = new Map<string, Map<Persistence, ThroughputResult[]>>();
  if (!o.skip.has('durable')) {
    for (let repeat = 0; repeat < o.repeat; repeat++) {
      DURABLE_CASES.forEach((c, index) => {
        // Through ours embedded, every mode with the same N.
        const messages = scaled(messagesOf('embedded', c.messages));
        const order = PERSISTENCE_MODES.map(
          (_, i) => PERSISTENCE_MODES[(i + index + repeat) % PERSISTENCE_MODES.length],
        );
        for (const persistence of order) {
          const job: ThroughputJob = {
            ...base,
            kind: 'throughput',
            name: `durable-${c.name}-${persistence}${o.repeat > 1 ? `-${repeat + 1}` : ''}`,
            variant: 'embedded',
            persistence,
            qos: c.qos,
            size: c.size,
            messages,
            warmupMessages: warmupFor(messages),
            maxSeconds: 30,
          };
          planned.push({
            job,
            timeoutMs: 150_000,
            done: (result) => {
              appendResult(durableRuns, c.name, persistence, result as ThroughputResult);
            },
          });
        }
      });
    }
  }
  if (settings.backlogMessages > 0) {
    const messages = settings.backlogMessages;
    const job: BacklogJob = {
      ...base,
      // The stall limit is for completions: LevelDB compactions can hold writes for a while.
      stallMs: 30_000,
      kind: 'backlog',
      name: `backlog-offline-qos1-64b-${messages}`,
      variant: 'tcp',
      qos: 1,
      size: 64,
      messages,
      outstanding: BACKLOG_OUTSTANDING,
      maxMessages: Math.max(2_000_000, messages),
      // Payloads alone are 64 MB at 1,000,000; leave room so the bound never refuses one.
      maxBytes: Math.max(1024 ** 3, messages * 64 * 4),
    };
    planned.push({
      job,
      // At least 2,000 msg/s, or it failed.
      timeoutMs: (messages / 2000 + 120) * 1000,
      done: (result) => {
        report.backlog = backlogSummary(job, result as BacklogResult);
      },
    });
  }
  if (!o.skip.has('dedupe')) {
    for (const persist of [false, true]) {
      const job: DedupeJob = {
        ...base,
        kind: 'dedupe',
        name: `dedupe-64b-${persist ? 'persist' : 'memory'}`,
        variant: 'embedded',
        qos: 1,
        size: 64,
        messages: Math.max(DEDUPE_MAX_ENTRIES, Math.round(DEDUPE_MESSAGES * o.scale)),
        maxEntries: DEDUPE_MAX_ENTRIES,
        persist,
      };
      planned.push({
        job,
        timeoutMs: 300_000,
        done: (result) => {
          report.dedupe.push({
            persist,
            messages: job.messages,
            maxEntries: job.maxEntries,
            result: result as DedupeResult,
          });
        },
      });
    }
  }
  if (!o.skip.has('latency')) {
    // Latency is of a QoS 1 delivery: Node-RED alone has none.
    for (const variant of o.variants.filter((v) => MQTT_VARIANTS.includes(v))) {
      const job: PacedJob = {
        ...base,
        kind: 'latency',
        name: `latency-qos1-64b-${variant}`,
        variant,
        qos: 1,
        size: 64,
        rate: o.latencyRate,
        warmupSeconds: 1,
        seconds: o.latencySeconds,
        sampleEvery: 5,
      };
      planned.push({
        job,
        timeoutMs: (o.latencySeconds + 120) * 1000,
        done: (result) => {
          report.latency[variant] = result as LatencyResult;
        },
      });
    }
  }
  if (settings.soakSeconds > 0) {
    const warmupSeconds = Math.min(10, Math.max(2, Math.round(settings.soakSeconds / 6)));
    const job: PacedJob = {
      ...base,
      kind: 'soak',
      name: `soak-qos1-64b-${o.soakVariant}${o.soakPersistence === 'none' ? '' : `-${o.soakPersistence}`}`,
      variant: o.soakVariant,
      persistence: o.soakPersistence,
      qos: 1,
      size: 64,
      rate: o.soakRate,
      warmupSeconds,
      seconds: settings.soakSeconds,
      sampleEvery: 5,
    };
    planned.push({
      job,
      timeoutMs: (settings.soakSeconds + warmupSeconds + 120) * 1000,
      done: (result) => {
        report.soak = soakSummary(result as SoakResult);
      },
    });
  }

  const m = report.machine;
  console.log(`durable-mqtt benchmark: ${planned.length} jobs, each in its own Node-RED process`);
  console.log(`${m.cpu}, ${m.cores} cores, Node.js ${m.node}, Node-RED ${m.nodeRed}, Aedes ${m.aedes}\n`);
  for (const [index, { job, timeoutMs, done }] of planned.entries()) {
    process.stdout.write(`[${index + 1}/${planned.length}] ${jobLabel(job)}: `);
    const started = Date.now();
    try {
      const result = await runJob(job, logDir, timeoutMs);
      done(result);
      console.log(`${jobFigure(result)} [${((Date.now() - started) / 1000).toFixed(1)} s]`);
      collectProblems(report, job, result);
    } catch (error) {
      console.log(`FAILED: ${(error as Error).message}`);
      report.failures.push(`${job.name}: ${(error as Error).message}`);
    }
  }

  if (!o.skip.has('throughput'))
    report.throughput = o.cases.map((c) => caseSummary(c, scaled(c.messages), runs.get(c.name)));
  if (!o.skip.has('durable'))
    report.durable = DURABLE_CASES.map((c) => durableSummary(c, scaled(c.messages), durableRuns.get(c.name)));
  report.problems = [...new Set(report.problems)];
  report.ceilings = ceilings(report);
  report.targets = targets(report);
  report.durationSeconds = (Date.now() - startedAt.getTime()) / 1000;

  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(o.out, 'latest.md'), await formatMarkdown(renderMarkdown(report)));
  console.log(`\n${renderText(report)}`);
  console.log(`written: ${path.relative(process.cwd(), path.join(o.out, 'latest.json'))}, latest.md`);
  if (profileDir) console.log(`CPU profiles: ${path.relative(process.cwd(), profileDir)}/`);
}

function jobLabel(job: Job): string {
  switch (job.kind) {
    case 'throughput':
      return (
        `${caseLabel(job.qos, job.size)}, ${fmt(job.messages)} messages, ${VARIANT_LABELS[job.variant]}` +
        (job.variant === 'floor' ? ' (no MQTT: the QoS does not apply)' : '') +
        (job.persistence ? `, persistence ${job.persistence}` : '')
      );
    case 'latency':
      return `latency at ${fmt(job.rate)} msg/s, ${VARIANT_LABELS[job.variant]}`;
    case 'soak':
      return `soak at ${fmt(job.rate)} msg/s for ${job.seconds} s, ${VARIANT_LABELS[job.variant]}${soakPersistenceLabel(job.persistence)}`;
    case 'backlog':
      return `offline backlog in a node-red process, ${fmt(job.messages)} messages queued, ${caseLabel(job.qos, job.size)}, broker unreachable`;
    case 'dedupe':
      return `dedupe node, ${fmt(job.messages)} distinct keys, maxEntries ${fmt(job.maxEntries)}, persist ${job.persist ? 'on' : 'off'}`;
  }
}

function jobFigure(result: JobResult): string {
  if (result.kind === 'backlog') {
    const notes = [
      result.failed ? `${result.failed} failed` : '',
      result.stalled ? 'STALLED' : '',
      result.stayedOffline ? '' : 'CONNECTED',
    ].filter(Boolean);
    return (
      `${fmt(result.rate)} msg/s, Node-RED RSS ${result.memory.rssMB.toFixed(0)} MB after gc ` +
      `(idle ${result.memory.idleRssMB.toFixed(0)} MB, peak ${result.memory.peakRssMB.toFixed(0)} MB), outbox ${(result.outboxBytes / 1024 ** 2).toFixed(0)} MB on disk` +
      (notes.length ? ` (${notes.join(', ')})` : '')
    );
  }
  if (result.kind === 'dedupe')
    return `${fmt(result.rate)} msg/s, heap ${result.heapMB.toFixed(0)} MB after gc (${fmt(result.bytesPerKey)} B per key)`;
  const d = result.delivery;
  const figure =
    result.kind === 'throughput'
      ? `${fmt(result.rate)} msg/s`
      : `p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, sent ${fmt(result.achievedRate)} msg/s`;
  const notes = [
    d.lost ? `${d.lost} lost` : '',
    d.stalled ? 'STALLED' : '',
    d.duplicates ? `${d.duplicates} dup` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${figure}${notes ? ` (${notes})` : ''}`;
}

function variantThroughput(results: ThroughputResult[]): VariantThroughput {
  return {
    rate: median(results.map((r) => r.rate)),
    lost: Math.max(...results.map((r) => r.delivery.lost)),
    stalled: results.some((r) => r.delivery.stalled),
    capped: results.some((r) => r.capped),
    rssMB: median(results.map((r) => r.memory.rssMB)),
    peakRssMB: median(results.map((r) => r.memory.peakRssMB)),
    idleRssMB: median(results.map((r) => r.memory.idleRssMB)),
    runs: results,
  };
}

function durableSummary(
  c: (typeof DURABLE_CASES)[number],
  messages: number,
  runs: Map<Persistence, ThroughputResult[]> | undefined,
): DurableSummary {
  const summary: DurableSummary = { name: c.name, qos: c.qos, size: c.size, messages, modes: {}, ratios: {} };
  for (const [persistence, results] of runs ?? []) summary.modes[persistence] = variantThroughput(results);
  const none = summary.modes.none?.rate;
  for (const persistence of ['queued', 'acknowledged'] as const) {
    const rate = summary.modes[persistence]?.rate;
    if (rate !== undefined && none) summary.ratios[persistence] = rate / none;
  }
  return summary;
}

function backlogSummary(job: BacklogJob, result: BacklogResult): BacklogSummary {
  return {
    messages: job.messages,
    outstanding: job.outstanding,
    maxMessages: job.maxMessages,
    maxBytes: job.maxBytes,
    result,
    goalMB: BACKLOG_RSS_GOAL_MB,
    met: result.memory.rssMB < BACKLOG_RSS_GOAL_MB && result.queued === job.messages && !result.stalled,
  };
}

function caseSummary(
  c: (typeof CASES)[number],
  messages: number,
  runs: Map<Variant, ThroughputResult[]> | undefined,
): CaseSummary {
  const summary: CaseSummary = { name: c.name, qos: c.qos, size: c.size, messages, variants: {}, ratios: {} };
  for (const [variant, results] of runs ?? []) summary.variants[variant] = variantThroughput(results);
  const core = summary.variants.core?.rate;
  for (const variant of ['embedded', 'tcp', 'floor'] as const) {
    const rate = summary.variants[variant]?.rate;
    if (rate !== undefined && core) summary.ratios[variant] = rate / core;
  }
  return summary;
}

/** For each ours/core goal: Node-RED alone / core in the same case, the most any MQTT node pair could reach. */
function ceilings(report: BenchReport): Ceiling[] {
  const list: Ceiling[] = [];
  for (const qos of [0, 1, 2] as const) {
    const c = report.throughput.find((s) => s.qos === qos && s.size === 64);
    const floorRate = c?.variants.floor?.rate;
    const coreRate = c?.variants.core?.rate;
    const ratio = c?.ratios.floor;
    if (floorRate === undefined || coreRate === undefined || ratio === undefined) continue;
    const goal = RATIO_GOALS[qos];
    list.push({ qos, size: 64, goal, floorRate, coreRate, ratio, reachable: ratio >= goal });
  }
  return list;
}

function soakSummary(result: SoakResult): SoakSummary {
  const rss = result.samples.map((s) => s.rssMB);
  const firstMB = rss[0] ?? 0;
  const lastMB = rss.at(-1) ?? 0;
  const growthMB = lastMB - firstMB;
  const growthPercent = firstMB ? (growthMB / firstMB) * 100 : 0;
  return {
    result,
    firstMB,
    lastMB,
    maxMB: Math.max(...rss),
    growthMB,
    growthPercent,
    slopeMBPerMinute: slope(result.samples.map((s) => ({ x: s.t / 60, y: s.rssMB }))),
    leak: growthPercent >= 10 && growthMB >= 20,
  };
}

function collectProblems(report: BenchReport, job: Job, result: JobResult) {
  if (result.kind === 'backlog') {
    const where = `offline backlog of ${fmt(result.sent)}`;
    if (result.failed)
      report.problems.push(
        `${where}: ${result.failed} messages failed (done with an error), e.g. ${result.failures.join(' | ')}`,
      );
    if (result.stalled)
      report.problems.push(
        `${where}: stalled — no completion for ${job.stallMs / 1000} s with ${fmt(result.sent - result.queued - result.failed)} outstanding`,
      );
    if (!result.stayedOffline)
      report.problems.push(`${where}: the broker config connected, though nothing should listen on its port`);
    if (result.outboxCount !== undefined && result.outboxCount !== result.queued)
      report.problems.push(
        `${where}: the outbox holds ${fmt(result.outboxCount)} messages, ${fmt(result.queued)} were queued`,
      );
    report.problems.push(...problemLines(where, result.problems));
    return;
  }
  if (result.kind === 'dedupe') {
    const where = `dedupe, persist ${job.kind === 'dedupe' && job.persist ? 'on' : 'off'}`;
    if (result.delivery.lost)
      report.problems.push(`${where}: ${result.delivery.lost} first copies did not come out`);
    if (result.delivery.stalled) report.problems.push(`${where}: stalled`);
    report.problems.push(...problemLines(where, result.problems));
    return;
  }
  const persistence = job.kind === 'throughput' && job.persistence ? `, persistence ${job.persistence}` : '';
  const where = `${job.kind} ${caseLabel(job.qos, job.size)}, ${VARIANT_LABELS[job.variant]}${persistence}`;
  const d = result.delivery;
  if (d.lost && job.qos > 0)
    report.problems.push(`${where}: ${d.lost} of ${d.sent} QoS ${job.qos} messages lost`);
  if (d.lost && job.qos === 0) report.problems.push(`${where}: ${d.lost} of ${d.sent} QoS 0 messages lost`);
  if (d.stalled)
    report.problems.push(
      `${where}: stalled — ${d.sent - d.received} messages outstanding, nothing received for ${report.settings.stallMs / 1000} s`,
    );
  if (d.duplicates) report.problems.push(`${where}: ${d.duplicates} duplicates`);
  if (result.kind === 'throughput' && result.capped)
    report.problems.push(`${where}: stopped sending after 30 s, before all messages were sent`);
  if (
    result.kind !== 'throughput' &&
    (job.kind === 'latency' || job.kind === 'soak') &&
    result.achievedRate < job.rate * 0.95
  )
    report.problems.push(
      `${where}: sent ${fmt(result.achievedRate)} msg/s of the ${fmt(job.rate)} asked (the window was full)`,
    );
  report.problems.push(...problemLines(where, result.problems));
}

function targets(report: BenchReport): Target[] {
  const list: Target[] = [];
  for (const qos of [0, 1, 2] as const) {
    const c = report.throughput.find((s) => s.qos === qos && s.size === 64);
    if (!c) continue;
    const value = c.ratios.embedded;
    list.push({
      what: `QoS ${qos}, 64 B, ours embedded / core`,
      goal: `≥ ${RATIO_GOALS[qos]}×`,
      value: value === undefined ? '–' : `${value.toFixed(2)}×`,
      met: value === undefined ? undefined : value >= RATIO_GOALS[qos],
    });
    const ceiling = report.ceilings.find((k) => k.qos === qos && k.size === 64);
    if (ceiling)
      list.push({
        what: `QoS ${qos}, 64 B, most any MQTT node pair could reach here: floor/core`,
        goal: `≥ ${ceiling.goal}×`,
        value: `${ceiling.ratio.toFixed(2)}×`,
        met: ceiling.reachable,
        ceiling: true,
      });
  }
  const durable = report.durable.find((s) => s.qos === 1 && s.size === 64);
  for (const persistence of ['queued', 'acknowledged'] as const) {
    const goal = DURABLE_GOALS[persistence];
    if (!durable || goal === undefined) continue;
    const value = durable.ratios[persistence];
    const mode = durable.modes[persistence];
    list.push({
      what: `QoS 1, 64 B, ours embedded, persistence ${persistence} / none`,
      goal: `≥ ${Math.round(goal * 100)} %`,
      value: value === undefined ? '–' : `${(value * 100).toFixed(0)} %`,
      met: value === undefined ? undefined : value >= goal && mode?.lost === 0 && !mode.stalled,
    });
  }
  const latency = report.latency.embedded;
  if (latency) {
    list.push({
      what: `p99 at ${fmt(report.settings.latencyRate)} msg/s, QoS 1, ours embedded`,
      goal: `≤ ${P99_GOAL_MS} ms`,
      value: `${latency.latency.p99} ms`,
      met: latency.latency.p99 <= P99_GOAL_MS && latency.delivery.lost === 0,
    });
  }
  if (report.soak) {
    list.push({
      what: `no RSS growth, ${report.settings.soakSeconds} s at ${fmt(report.settings.soakRate)} msg/s${soakPersistenceLabel(report.settings.soakPersistence)}`,
      goal: '< 10 % or < 20 MB',
      value: `${report.soak.growthMB >= 0 ? '+' : ''}${report.soak.growthMB.toFixed(1)} MB`,
      met: !report.soak.leak && report.soak.result.delivery.lost === 0,
    });
  }
  if (report.backlog) {
    const b = report.backlog;
    list.push({
      what: `RSS holding ${fmt(b.messages)} queued messages offline (after gc)`,
      goal: `< ${b.goalMB} MB`,
      value: `${b.result.memory.rssMB.toFixed(0)} MB`,
      met: b.met,
    });
  }
  return list;
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
