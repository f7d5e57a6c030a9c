/**
 * Latency: QoS 1 messages at a steady rate through each MQTT variant; the figures are
 * percentiles from send to sink. The soak (soak.ts) is paced the same way and read here.
 */
import { caseLabel, problemLines, type BenchReport, type Target } from '../report.js';
import {
  MQTT_VARIANTS,
  VARIANT_LABELS,
  type LatencyResult,
  type PacedJob,
  type SoakResult,
} from '../types.js';
import {
  deliveryNotes,
  deliveryProblems,
  fmt,
  resultOf,
  type JobKind,
  type JobReading,
  type PlannedJob,
  type RunPlan,
} from './kind.js';
import { outLabel } from './throughput.js';

const P99_GOAL_MS = 5;

/** What a paced job's result (latency or soak) shows. */
export function readPaced(job: PacedJob, result: LatencyResult | SoakResult, stallMs: number): JobReading {
  const where = `${job.kind} ${caseLabel(job.qos, job.size)}, ${VARIANT_LABELS[job.variant]}${outLabel(job)}`;
  const problems = deliveryProblems(where, job.qos, result.delivery, stallMs);
  if (result.achievedRate < job.rate * 0.95)
    problems.push(
      `${where}: sent ${fmt(result.achievedRate)} msg/s of the ${fmt(job.rate)} asked (the window was full)`,
    );
  return {
    figure:
      `p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, sent ${fmt(result.achievedRate)} msg/s` +
      deliveryNotes(result.delivery),
    problems: [...problems, ...problemLines(where, result.problems)],
  };
}

export const latency: JobKind = {
  name: 'latency',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { latencyRate, latencySeconds, stallMs } = run.settings;
    // Latency is of a QoS 1 delivery: Node-RED alone has none.
    return run.variants
      .filter((v) => MQTT_VARIANTS.includes(v))
      .map((variant) => {
        const job: PacedJob = {
          ...run.shared,
          kind: 'latency',
          name: `latency-qos1-64b-${variant}`,
          variant,
          qos: 1,
          size: 64,
          rate: latencyRate,
          warmupSeconds: 1,
          seconds: latencySeconds,
          sampleEvery: 5,
        };
        return {
          job,
          timeoutMs: (latencySeconds + 120) * 1000,
          label: `latency at ${fmt(job.rate)} msg/s, ${VARIANT_LABELS[variant]}`,
          read(jobResult) {
            const result = resultOf(jobResult, 'latency');
            report.latency[variant] = result;
            return readPaced(job, result, stallMs);
          },
        };
      });
  },
  targets(report: BenchReport): Target[] {
    const embedded = report.latency.embedded;
    if (!embedded) return [];
    return [
      {
        what: `p99 at ${fmt(report.settings.latencyRate)} msg/s, QoS 1, ours embedded`,
        goal: `≤ ${P99_GOAL_MS} ms`,
        value: `${embedded.latency.p99} ms`,
        met: embedded.latency.p99 <= P99_GOAL_MS && embedded.delivery.lost === 0,
      },
    ];
  },
};
