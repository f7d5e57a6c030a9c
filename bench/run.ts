/**
 * `npm run bench`: this package's nodes and the Node-RED core MQTT nodes, side
 * by side in one run, through this package's embedded broker node. Each job
 * (one case, one variant) runs in a fresh worker process (bench/worker.ts);
 * the table goes to the terminal, bench/results/latest.json and latest.md.
 * Each kind of job plans its jobs and reads their results in bench/jobs/; this
 * file parses the options, runs the jobs and writes the report.
 * `npm run bench -- --help` lists the options.
 */
import path from 'node:path';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BACKLOG_MESSAGES, BACKLOG_OUTSTANDING, backlog } from './jobs/backlog.js';
import { clients } from './jobs/clients.js';
import { dedupe } from './jobs/dedupe.js';
import { durable } from './jobs/durable.js';
import { scaled, type JobKind, type RunPlan } from './jobs/kind.js';
import { latency } from './jobs/latency.js';
import { monitor } from './jobs/monitor.js';
import { receipts } from './jobs/receipts.js';
import { SCALE_CLIENTS, SCALE_SECONDS, scale } from './jobs/scale.js';
import { soak } from './jobs/soak.js';
import { tcp } from './jobs/tcp.js';
import { CASES, EMBEDDED_MESSAGES_FACTOR, FLOOR_MESSAGES, throughput } from './jobs/throughput.js';
import { machine } from './machine.js';
import { renderMarkdown, renderText, type BenchReport, type Settings } from './report.js';
import {
  MQTT_VARIANTS,
  PERSISTENCE_MODES,
  VARIANTS,
  type Job,
  type JobResult,
  type Persistence,
  type ProtocolVersion,
  type Variant,
  type WorkerMessage,
} from './types.js';

const ROOT = path.resolve(__dirname, '..');

/** The kinds of job, in the order they run. */
const KINDS: JobKind[] = [
  throughput,
  durable,
  receipts,
  clients,
  tcp,
  scale,
  backlog,
  dedupe,
  latency,
  soak,
  monitor,
];
/** The kinds with goals, in the order of the targets table. */
const TARGET_KINDS: JobKind[] = [
  throughput,
  durable,
  receipts,
  clients,
  tcp,
  scale,
  latency,
  soak,
  backlog,
  monitor,
];

const HELP = `npm run bench -- [options]

  --repeat N            run each throughput case N times, report the median (1)
  --soak SECONDS        leak check at --soak-rate msg/s, QoS 1, 64 B; 0 skips it (300)
  --soak-rate N         messages per second during the soak (10000)
  --soak-variant V      embedded, tcp or core (embedded)
  --soak-persistence P  our out node's persistence during the soak: none, queued or acknowledged (none)
  --cases LIST          throughput cases, comma-separated: ${CASES.map((c) => c.name).join(',')}
  --variants LIST       embedded,tcp,core,floor (all); floor is Node-RED alone, no MQTT (throughput only)
  --skip LIST           ${KINDS.map((k) => k.name).join(', ')}
                        (clients: the embedded broker serving two MQTT.js clients of another process
                        over TCP, QoS 0/1/2, MQTT 3.1.1 and MQTT 5 side by side, and Mosquitto;
                        tcp: ours vs core through a Mosquitto it starts and through the embedded
                        broker over TCP, QoS 0/1/2, 64 B and 4 KB, persistence and latency through Mosquitto;
                        scale: many TCP clients against the embedded broker and Mosquitto, and the
                        memory per client of a bare Node.js TCP server and of plain Aedes;
                        monitor: the open sidebar's cost)
  --scale-clients N     TCP clients of the scale job (${SCALE_CLIENTS}); each publishes QoS 1 every 10 s
  --scale-seconds S     the scale job's measured window, once every client is connected (${SCALE_SECONDS})
  --backlog N           messages queued by an out node that cannot connect (${BACKLOG_MESSAGES}); 0 skips it
  --window N            most messages sent but not yet received (500)
  --scale X             multiply every case's message count (1)
  --latency-seconds S   length of the latency runs, receipts' included (5)
  --latency-rate N      messages per second of the latency runs, receipts' included (1000)
  --receipts-mqtt LIST  MQTT versions of the end-to-end acknowledgment jobs: 4 (3.1.1, through the
                        embedded broker's core), 5 (MQTT over an in-process stream) (4)
  --profile             CPU profile of each measured phase into bench/results/profiles/
  --out DIR             where results go (bench/results)
`;

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
      'scale-clients': { type: 'string', default: String(SCALE_CLIENTS) },
      'scale-seconds': { type: 'string', default: String(SCALE_SECONDS) },
      window: { type: 'string', default: '500' },
      scale: { type: 'string', default: '1' },
      'latency-seconds': { type: 'string', default: '5' },
      'latency-rate': { type: 'string', default: '1000' },
      'receipts-mqtt': { type: 'string', default: '4' },
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
    skip: new Set(list(values.skip || 'none', ['none', ...KINDS.map((k) => k.name)], 'skip')),
    backlog: Math.round(number('backlog', 0)),
    scaleClients: Math.round(number('scale-clients', 1)),
    scaleSeconds: number('scale-seconds', 10),
    window: Math.round(number('window', 1)),
    scale: number('scale', 0.001),
    latencySeconds: number('latency-seconds', 1),
    latencyRate: number('latency-rate', 1),
    receiptsProtocols: list(values['receipts-mqtt'], ['4', '5'], 'receipts-mqtt').map(
      Number,
    ) as ProtocolVersion[],
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
  const startedAt = new Date();
  const payload = randomBytes(Math.max(4096, ...o.cases.map((c) => c.size)));
  const logDir = path.join(o.out, 'logs');
  const profileDir = o.profile ? path.join(o.out, 'profiles') : undefined;
  const settings: Settings = {
    window: o.window,
    repeat: o.repeat,
    scale: o.scale,
    stallMs: 5000,
    latencyRate: o.latencyRate,
    latencySeconds: o.latencySeconds,
    soakSeconds: o.skip.has('soak') ? 0 : o.soakSeconds,
    soakRate: o.soakRate,
    soakVariant: o.soakVariant,
    soakPersistence: o.soakPersistence,
    receiptsProtocols: o.receiptsProtocols,
    backlogMessages: o.skip.has('backlog') ? 0 : o.backlog,
    backlogOutstanding: BACKLOG_OUTSTANDING,
    scaleClients: o.scaleClients,
    scaleSeconds: o.scaleSeconds,
    floorMessages: scaled(FLOOR_MESSAGES, o.scale),
    embeddedMessagesFactor: EMBEDDED_MESSAGES_FACTOR,
  };
  const report: BenchReport = {
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    machine: machine(ROOT),
    settings,
    throughput: [],
    durable: [],
    receipts: [],
    clients: [],
    monitor: [],
    dedupe: [],
    latency: {},
    targets: [],
    ceilings: [],
    problems: [],
    failures: [],
  };
  const run: RunPlan = {
    settings,
    cases: o.cases,
    variants: o.variants,
    shared: { payloadHex: payload.toString('hex'), window: o.window, stallMs: settings.stallMs, profileDir },
  };
  const planned = KINDS.filter((kind) => !o.skip.has(kind.name)).flatMap((kind) => kind.plan(run, report));

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

  report.problems = [...new Set(report.problems)];
  report.targets = TARGET_KINDS.flatMap((kind) => kind.targets?.(report) ?? []);
  report.durationSeconds = (Date.now() - startedAt.getTime()) / 1000;

  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(o.out, 'latest.md'), await formatMarkdown(renderMarkdown(report)));
  console.log(`\n${renderText(report)}`);
  console.log(`written: ${path.relative(process.cwd(), path.join(o.out, 'latest.json'))}, latest.md`);
  if (profileDir) console.log(`CPU profiles: ${path.relative(process.cwd(), profileDir)}/`);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
