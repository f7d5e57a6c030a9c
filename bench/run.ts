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
import { BACKLOG_MESSAGES, BACKLOG_OUTSTANDING, backlog } from './jobs/backlog.js';
import { dedupe } from './jobs/dedupe.js';
import {
  deliveryNotes,
  deliveryProblems,
  fmt,
  resultOf,
  scaled as scaledBy,
  type BenchCase,
  type JobReading,
  type PlannedJob,
  type RunPlan,
} from './jobs/kind.js';
import { latency } from './jobs/latency.js';
import { soak } from './jobs/soak.js';
import { machine } from './machine.js';
import { median } from './measurement.js';
import {
  caseLabel,
  problemLines,
  renderMarkdown,
  renderText,
  type BenchReport,
  type CaseSummary,
  type Ceiling,
  type DurableSummary,
  type Settings,
  type Target,
  type VariantThroughput,
} from './report.js';
import {
  MQTT_VARIANTS,
  PERSISTENCE_MODES,
  VARIANTS,
  VARIANT_LABELS,
  type Job,
  type JobResult,
  type Persistence,
  type QoS,
  type ThroughputJob,
  type ThroughputResult,
  type Variant,
  type WorkerMessage,
} from './types.js';

const ROOT = path.resolve(__dirname, '..');

/** Message counts picked so each case runs a few seconds on a 2-core machine; --scale multiplies them. */
const CASES: BenchCase[] = [
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
const DURABLE_CASES: BenchCase[] = [
  { name: 'qos1-64b', qos: 1, size: 64, messages: 120_000 },
  { name: 'qos2-64b', qos: 2, size: 64, messages: 50_000 },
];
/** Goals of queued / none and acknowledged / none at QoS 1, 64 B. */
const DURABLE_GOALS: Partial<Record<Persistence, number>> = { queued: 0.5, acknowledged: 0.4 };

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

async function main() {
  const o = options();
  const scaled = (messages: number) => scaledBy(messages, o.scale);
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

  const run: RunPlan = { settings, cases: o.cases, variants: o.variants, shared: base };
  const planned: PlannedJob[] = [];
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
            label: throughputLabel(job),
            read: (jobResult) => {
              const result = resultOf(jobResult, 'throughput');
              appendResult(runs, c.name, variant, result);
              return readThroughput(job, result, stallMs);
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
            label: throughputLabel(job),
            read: (jobResult) => {
              const result = resultOf(jobResult, 'throughput');
              appendResult(durableRuns, c.name, persistence, result);
              return readThroughput(job, result, stallMs);
            },
          });
        }
      });
    }
  }
  for (const kind of [backlog, dedupe, latency, soak])
    if (!o.skip.has(kind.name)) planned.push(...kind.plan(run, report));

  const m = report.machine;
  console.log(`durable-mqtt benchmark: ${planned.length} jobs, each in its own Node-RED process`);
  console.log(`${m.cpu}, ${m.cores} cores, Node.js ${m.node}, Node-RED ${m.nodeRed}, Aedes ${m.aedes}\n`);
  for (const [index, { job, timeoutMs, label, read }] of planned.entries()) {
    process.stdout.write(`[${index + 1}/${planned.length}] ${label}: `);
    const started = Date.now();
    try {
      const { figure, problems } = read(await runJob(job, logDir, timeoutMs));
      console.log(`${figure} [${((Date.now() - started) / 1000).toFixed(1)} s]`);
      report.problems.push(...problems);
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

function throughputLabel(job: ThroughputJob): string {
  return (
    `${caseLabel(job.qos, job.size)}, ${fmt(job.messages)} messages, ${VARIANT_LABELS[job.variant]}` +
    (job.variant === 'floor' ? ' (no MQTT: the QoS does not apply)' : '') +
    (job.persistence ? `, persistence ${job.persistence}` : '')
  );
}

function readThroughput(job: ThroughputJob, result: ThroughputResult, stallMs: number): JobReading {
  const persistence = job.persistence ? `, persistence ${job.persistence}` : '';
  const where = `${job.kind} ${caseLabel(job.qos, job.size)}, ${VARIANT_LABELS[job.variant]}${persistence}`;
  const problems = deliveryProblems(where, job.qos, result.delivery, stallMs);
  if (result.capped) problems.push(`${where}: stopped sending after 30 s, before all messages were sent`);
  return {
    figure: `${fmt(result.rate)} msg/s${deliveryNotes(result.delivery)}`,
    problems: [...problems, ...problemLines(where, result.problems)],
  };
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
  list.push(...[latency, soak, backlog].flatMap((kind) => kind.targets?.(report) ?? []));
  return list;
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
