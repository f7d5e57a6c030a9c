/**
 * The TCP path: our nodes and the core MQTT nodes through a broker over TCP loopback, side by side
 * in one run: a Mosquitto the worker starts (`max_inflight_messages 0`), and this package's
 * embedded broker node listening on TCP (our broker config connects to its port over mqtt://, not
 * through the in-process link). Throughput at QoS 0/1/2, 64 B and 4 KB; our out node's persistence
 * modes through Mosquitto; the latency at a steady rate through Mosquitto.
 */
import { BROKER_LABELS, caseLabel, type BenchReport, type Target, type TcpCaseSummary } from '../report.js';
import { PERSISTENCE_MODES, VARIANT_LABELS, type BrokerKind, type PacedJob, type QoS } from '../types.js';
import {
  fmt,
  resultOf,
  scaled,
  type BenchCase,
  type JobKind,
  type PlannedJob,
  type RunPlan,
} from './kind.js';
import { readPaced } from './latency.js';
import { ratiosTo, repeatSuffix, rotations, throughputJob, withRun } from './throughput.js';

/** The two sides compared: our broker config over mqtt:// and the core `mqtt-broker`. */
export const TCP_VARIANTS = ['tcp', 'core'] as const;
export type TcpVariant = (typeof TCP_VARIANTS)[number];

const TCP_BROKERS: readonly BrokerKind[] = ['mosquitto', 'embedded'];

/**
 * Message counts picked so each case runs a few seconds at TCP rates (10,000–60,000 msg/s on a
 * 2-core machine); the names are the throughput cases', so `--cases` picks them too.
 */
const TCP_CASES: BenchCase[] = [
  { name: 'qos0-64b', qos: 0, size: 64, messages: 150_000 },
  { name: 'qos0-4kb', qos: 0, size: 4096, messages: 80_000 },
  { name: 'qos1-64b', qos: 1, size: 64, messages: 100_000 },
  { name: 'qos1-4kb', qos: 1, size: 4096, messages: 60_000 },
  { name: 'qos2-64b', qos: 2, size: 64, messages: 60_000 },
  { name: 'qos2-4kb', qos: 2, size: 4096, messages: 40_000 },
];

/** Our out node's persistence through Mosquitto: the case of the same name, and its N. */
const TCP_PERSISTENCE_CASES = ['qos1-64b', 'qos2-64b'];

/** Ours/core goals, from the issue: at 64 B per QoS, and at 4 KB at every QoS. */
const RATIO_GOALS_64B: Record<QoS, number> = { 0: 2, 1: 3, 2: 3 };
const RATIO_GOAL_4KB = 2;
const P99_GOAL_MS = 2;

function goalOf(qos: QoS, size: number): number {
  return size === 64 ? RATIO_GOALS_64B[qos] : RATIO_GOAL_4KB;
}

export const tcp: JobKind = {
  name: 'tcp',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats, latencyRate, latencySeconds, stallMs } = run.settings;
    const names = new Set(run.cases.map((c) => c.name));
    const cases = TCP_CASES.filter((c) => names.has(c.name));
    const variants = TCP_VARIANTS.filter((v) => run.variants.includes(v));
    const planned: PlannedJob[] = [];

    report.tcp = { cases: [], persistence: [], latency: {} };
    const tcpReport = report.tcp;
    for (const broker of TCP_BROKERS) {
      const summaries: TcpCaseSummary[] = cases.map((c) => ({
        broker,
        name: c.name,
        qos: c.qos,
        size: c.size,
        messages: scaled(c.messages, scale),
        variants: {},
        ratios: {},
      }));
      tcpReport.cases.push(...summaries);
      for (const { index, key: variant, repeat } of rotations(cases.length, variants, repeats)) {
        const c = cases[index];
        const summary = summaries[index];
        const fields = {
          name: `tcp-${broker}-${c.name}-${variant}${repeatSuffix(repeat, repeats)}`,
          variant,
          broker,
          qos: c.qos,
          size: c.size,
          messages: summary.messages,
        };
        planned.push(
          labelled(
            throughputJob(run, fields, (result) => {
              summary.variants[variant] = withRun(summary.variants[variant], result);
              summary.ratios = ratiosTo(summary.variants, 'core', ['tcp']);
              const durable = tcpReport.persistence.find((s) => broker === 'mosquitto' && s.name === c.name);
              if (durable) {
                durable.modes.none = summary.variants.tcp;
                durable.ratios = ratiosTo(durable.modes, 'none', ['queued', 'acknowledged']);
              }
            }),
            broker,
          ),
        );
      }
    }

    // Persistence queued and acknowledged through Mosquitto; `none` is the case's ours row above.
    if (variants.includes('tcp')) {
      const durableCases = cases.filter((c) => TCP_PERSISTENCE_CASES.includes(c.name));
      const modes = PERSISTENCE_MODES.filter((p) => p !== 'none');
      for (const c of durableCases)
        tcpReport.persistence.push({
          name: c.name,
          qos: c.qos,
          size: c.size,
          messages: scaled(c.messages, scale),
          modes: {},
          ratios: {},
        });
      for (const { index, key: persistence, repeat } of rotations(durableCases.length, modes, repeats)) {
        const c = durableCases[index];
        const summary = tcpReport.persistence[index];
        const fields = {
          name: `tcp-mosquitto-${c.name}-${persistence}${repeatSuffix(repeat, repeats)}`,
          variant: 'tcp' as const,
          broker: 'mosquitto' as const,
          persistence,
          qos: c.qos,
          size: c.size,
          messages: summary.messages,
        };
        planned.push(
          labelled(
            throughputJob(run, fields, (result) => {
              summary.modes[persistence] = withRun(summary.modes[persistence], result);
              summary.ratios = ratiosTo(summary.modes, 'none', ['queued', 'acknowledged']);
            }),
            'mosquitto',
          ),
        );
      }
    }

    // Latency through Mosquitto at a steady rate, QoS 1, 64 B.
    for (const variant of variants) {
      const job: PacedJob = {
        ...run.shared,
        kind: 'latency',
        name: `tcp-mosquitto-latency-qos1-64b-${variant}`,
        variant,
        broker: 'mosquitto',
        qos: 1,
        size: 64,
        rate: latencyRate,
        warmupSeconds: 1,
        seconds: latencySeconds,
        sampleEvery: 5,
      };
      planned.push({
        job,
        timeoutMs: (latencySeconds + 120) * 1000,
        label: `latency at ${fmt(job.rate)} msg/s, ${VARIANT_LABELS[variant]}, Mosquitto`,
        read(jobResult) {
          const result = resultOf(jobResult, 'latency');
          tcpReport.latency[variant] = result;
          return readPaced(job, result, stallMs);
        },
      });
    }
    return planned;
  },
  targets(report: BenchReport): Target[] {
    if (!report.tcp) return [];
    const list: Target[] = [];
    for (const c of report.tcp.cases) {
      const value = c.ratios.tcp;
      const goal = goalOf(c.qos as QoS, c.size);
      const ours = c.variants.tcp;
      list.push({
        what: `${caseLabel(c.qos, c.size)}, ${BROKER_LABELS[c.broker]}, ours / core`,
        goal: `≥ ${goal}×`,
        value: value === undefined ? '–' : `${value.toFixed(2)}×`,
        met: value === undefined ? undefined : value >= goal && ours?.lost === 0 && !ours.stalled,
      });
    }
    const ours = report.tcp.latency.tcp;
    const core = report.tcp.latency.core;
    if (ours)
      list.push({
        what: `p99 at ${fmt(report.settings.latencyRate)} msg/s, QoS 1, Mosquitto, ours (core: ${core ? `${core.latency.p99} ms` : '–'})`,
        goal: `≤ ${P99_GOAL_MS} ms`,
        value: `${ours.latency.p99} ms`,
        met: ours.latency.p99 <= P99_GOAL_MS && ours.delivery.lost === 0,
      });
    return list;
  },
};

/** The broker goes on the progress line, after the variant. */
function labelled(planned: PlannedJob, broker: BrokerKind): PlannedJob {
  return { ...planned, label: `${planned.label}, ${BROKER_LABELS[broker]}` };
}
