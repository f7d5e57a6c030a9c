/**
 * Throughput: each case's N messages through each variant, at most `window` sent but
 * not yet received; the figure is messages received per second. The persistence cases
 * (durable.ts) are throughput jobs too, planned and read with the helpers here.
 */
import { median } from '../measurement.js';
import {
  caseLabel,
  problemLines,
  protocolLabel,
  type BenchReport,
  type CaseSummary,
  type Ceiling,
  type Target,
  type VariantThroughput,
} from '../report.js';
import {
  VARIANT_LABELS,
  type QoS,
  type ThroughputJob,
  type ThroughputResult,
  type Variant,
} from '../types.js';
import {
  deliveryNotes,
  deliveryProblems,
  fmt,
  resultOf,
  scaled,
  type BenchCase,
  type JobKind,
  type PlannedJob,
  type RunPlan,
} from './kind.js';

/** Message counts picked so each case runs a few seconds on a 2-core machine; --scale multiplies them. */
export const CASES: BenchCase[] = [
  { name: 'qos0-64b', qos: 0, size: 64, messages: 200_000 },
  { name: 'qos0-4kb', qos: 0, size: 4096, messages: 120_000 },
  { name: 'qos1-64b', qos: 1, size: 64, messages: 120_000 },
  { name: 'qos1-4kb', qos: 1, size: 4096, messages: 50_000 },
  { name: 'qos2-64b', qos: 2, size: 64, messages: 50_000 },
  { name: 'qos2-4kb', qos: 2, size: 4096, messages: 40_000 },
];

/**
 * Messages of every Node-RED alone case: it moves 300,000–500,000 msg/s here, so a case's
 * N (50,000 at QoS 2) would be measured over a tenth of a second, low and unsteady.
 */
export const FLOOR_MESSAGES = 1_000_000;

/**
 * Ours embedded moves 150,000–300,000 msg/s since its in-process link: it sends this many times
 * a case's N, so its phase lasts seconds as the others' do, not a fraction of one.
 */
export const EMBEDDED_MESSAGES_FACTOR = 5;

/** Ours/core goals at 64 B through the embedded broker, from the issue; Node-RED alone / core is their ceiling. */
const RATIO_GOALS: Record<QoS, number> = { 0: 5, 1: 4, 2: 3 };

/** The measured phase stops sending after this long, whatever was sent. */
const MAX_SECONDS = 30;

export function messagesOf(variant: Variant, caseMessages: number): number {
  if (variant === 'floor') return FLOOR_MESSAGES;
  return variant === 'embedded' ? caseMessages * EMBEDDED_MESSAGES_FACTOR : caseMessages;
}

/** Messages sent before measuring: a tenth of the run, within 1,000 to 5,000. */
export function warmupFor(messages: number): number {
  return Math.min(5000, Math.max(1000, Math.round(messages / 10)));
}

/**
 * Each of `caseCount` cases once with every key (a variant, or a persistence mode) per
 * repeat; the order of the keys turns from case to case and from repeat to repeat, so
 * none always runs first.
 */
export function rotations<K>(
  caseCount: number,
  keys: readonly K[],
  repeats: number,
): { index: number; key: K; repeat: number }[] {
  const list: { index: number; key: K; repeat: number }[] = [];
  for (let repeat = 0; repeat < repeats; repeat++)
    for (let index = 0; index < caseCount; index++)
      for (let i = 0; i < keys.length; i++)
        list.push({ index, key: keys[(i + index + repeat) % keys.length], repeat });
  return list;
}

/** The suffix of a job's name for its repeat, when there are several. */
export function repeatSuffix(repeat: number, repeats: number): string {
  return repeats > 1 ? `-${repeat + 1}` : '';
}

/**
 * A throughput job, ready to run: `record` keeps its result for the report; the
 * progress line and the problems are the same for every throughput job.
 */
export function throughputJob(
  run: RunPlan,
  fields: Pick<
    ThroughputJob,
    'name' | 'variant' | 'persistence' | 'until' | 'protocolVersion' | 'qos' | 'size' | 'messages'
  >,
  record: (result: ThroughputResult) => void,
): PlannedJob {
  const job: ThroughputJob = {
    ...run.shared,
    kind: 'throughput',
    ...fields,
    warmupMessages: warmupFor(fields.messages),
    maxSeconds: MAX_SECONDS,
  };
  const outSettings = outLabel(job);
  const where = `${job.kind} ${caseLabel(job.qos, job.size)}, ${VARIANT_LABELS[job.variant]}${outSettings}`;
  return {
    job,
    timeoutMs: 150_000,
    label:
      `${caseLabel(job.qos, job.size)}, ${fmt(job.messages)} messages, ${VARIANT_LABELS[job.variant]}` +
      (job.variant === 'floor' ? ' (no MQTT: the QoS does not apply)' : '') +
      outSettings,
    read(jobResult) {
      const result = resultOf(jobResult, 'throughput');
      record(result);
      const problems = deliveryProblems(where, job.qos, result.delivery, run.settings.stallMs);
      if (result.capped)
        problems.push(`${where}: stopped sending after ${job.maxSeconds} s, before all messages were sent`);
      return {
        figure: `${fmt(result.rate)} msg/s${deliveryNotes(result.delivery)}`,
        problems: [...problems, ...problemLines(where, result.problems)],
      };
    },
  };
}

/** What follows a job's variant in its label: our out node's persistence, `until`, the MQTT version. */
export function outLabel(job: Pick<ThroughputJob, 'persistence' | 'until' | 'protocolVersion'>): string {
  if (job.until) return `, acknowledged until ${job.until}, ${protocolLabel(job.protocolVersion)}`;
  return job.persistence ? `, persistence ${job.persistence}` : '';
}

/** A variant's (or persistence mode's) figures with one more run: medians over the runs, the worst loss. */
export function withRun(
  previous: VariantThroughput | undefined,
  result: ThroughputResult,
): VariantThroughput {
  const runs = [...(previous?.runs ?? []), result];
  return {
    rate: median(runs.map((r) => r.rate)),
    lost: Math.max(...runs.map((r) => r.delivery.lost)),
    stalled: runs.some((r) => r.delivery.stalled),
    capped: runs.some((r) => r.capped),
    rssMB: median(runs.map((r) => r.memory.rssMB)),
    peakRssMB: median(runs.map((r) => r.memory.peakRssMB)),
    idleRssMB: median(runs.map((r) => r.memory.idleRssMB)),
    runs,
  };
}

/** Each key's rate over the reference key's, for the keys that have one. */
export function ratiosTo<K extends PropertyKey>(
  figures: Partial<Record<K, VariantThroughput>>,
  reference: K,
  keys: readonly K[],
): Partial<Record<K, number>> {
  const ratios: Partial<Record<K, number>> = {};
  const referenceRate = figures[reference]?.rate;
  for (const key of keys) {
    const rate = figures[key]?.rate;
    if (rate !== undefined && referenceRate) ratios[key] = rate / referenceRate;
  }
  return ratios;
}

/** For each ours/core goal: Node-RED alone / core in the same case, the most any MQTT node pair could reach. */
function ceilings(cases: CaseSummary[]): Ceiling[] {
  const list: Ceiling[] = [];
  for (const qos of [0, 1, 2] as const) {
    const c = cases.find((s) => s.qos === qos && s.size === 64);
    const floorRate = c?.variants.floor?.rate;
    const coreRate = c?.variants.core?.rate;
    const ratio = c?.ratios.floor;
    if (floorRate === undefined || coreRate === undefined || ratio === undefined) continue;
    const goal = RATIO_GOALS[qos];
    list.push({ qos, size: 64, goal, floorRate, coreRate, ratio, reachable: ratio >= goal });
  }
  return list;
}

export const throughput: JobKind = {
  name: 'throughput',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats } = run.settings;
    report.throughput = run.cases.map((c) => ({
      name: c.name,
      qos: c.qos,
      size: c.size,
      messages: scaled(c.messages, scale),
      variants: {},
      ratios: {},
    }));
    return rotations(run.cases.length, run.variants, repeats).map(({ index, key: variant, repeat }) => {
      const c = run.cases[index];
      const summary = report.throughput[index];
      const fields = {
        name: `throughput-${c.name}-${variant}${repeatSuffix(repeat, repeats)}`,
        variant,
        qos: c.qos,
        size: c.size,
        messages: scaled(messagesOf(variant, c.messages), scale),
      };
      return throughputJob(run, fields, (result) => {
        summary.variants[variant] = withRun(summary.variants[variant], result);
        summary.ratios = ratiosTo(summary.variants, 'core', ['embedded', 'tcp', 'floor']);
        report.ceilings = ceilings(report.throughput);
      });
    });
  },
  targets(report: BenchReport): Target[] {
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
    return list;
  },
};
