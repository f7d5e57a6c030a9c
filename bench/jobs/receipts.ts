/**
 * End-to-end acknowledgment: our out node with persistence acknowledged, QoS 1, waiting
 * until the broker's acknowledgment and until the consuming flow's receipt, side by side
 * through ours embedded, counted at the out node's receipt output; and, until subscriber,
 * the time from the out node's input to its receipt output at a steady rate.
 */
import { protocolLabel, type BenchReport, type Target } from '../report.js';
import { UNTIL_MODES, type PacedJob } from '../types.js';
import { fmt, resultOf, scaled, type JobKind, type PlannedJob, type RunPlan } from './kind.js';
import { readPaced } from './latency.js';
import { ratiosTo, repeatSuffix, rotations, throughputJob, withRun } from './throughput.js';

/** Messages of each throughput job, the same for both `until`: a few seconds each on a 2-core machine. */
const RECEIPT_MESSAGES = 100_000;
/** The goal for until subscriber / until broker. */
const RATIO_GOAL = 0.5;

export const receipts: JobKind = {
  name: 'receipts',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats, latencyRate, latencySeconds, stallMs, receiptsProtocols } = run.settings;
    const messages = scaled(RECEIPT_MESSAGES, scale);
    report.receipts = receiptsProtocols.map((protocolVersion) => ({
      protocolVersion,
      qos: 1,
      size: 64,
      messages,
      modes: {},
    }));
    const throughputJobs = rotations(receiptsProtocols.length, UNTIL_MODES, repeats).map(
      ({ index, key: until, repeat }) => {
        const summary = report.receipts[index];
        const { protocolVersion } = summary;
        const fields = {
          name: `receipts-qos1-64b-v${protocolVersion}-until-${until}${repeatSuffix(repeat, repeats)}`,
          variant: 'embedded' as const,
          until,
          protocolVersion,
          qos: 1 as const,
          size: 64,
          messages,
        };
        return throughputJob(run, fields, (result) => {
          summary.modes[until] = withRun(summary.modes[until], result);
          summary.ratio = ratiosTo(summary.modes, 'broker', ['subscriber']).subscriber;
        });
      },
    );
    const latencyJobs = report.receipts.map((summary): PlannedJob => {
      const job: PacedJob = {
        ...run.shared,
        kind: 'latency',
        name: `receipts-latency-qos1-64b-v${summary.protocolVersion}`,
        variant: 'embedded',
        until: 'subscriber',
        protocolVersion: summary.protocolVersion,
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
        label: `receipt latency at ${fmt(job.rate)} msg/s, ours embedded, until subscriber, ${protocolLabel(job.protocolVersion)}`,
        read(jobResult) {
          const result = resultOf(jobResult, 'latency');
          summary.latency = result;
          return readPaced(job, result, stallMs);
        },
      };
    });
    return [...throughputJobs, ...latencyJobs];
  },
  targets(report: BenchReport): Target[] {
    return report.receipts.map((summary) => {
      const { ratio, modes } = summary;
      const clean = UNTIL_MODES.every((until) => modes[until]?.lost === 0 && !modes[until]?.stalled);
      return {
        what: `QoS 1, 64 B, ours embedded, ${protocolLabel(summary.protocolVersion)}, acknowledged until subscriber / until broker`,
        goal: `≥ ${Math.round(RATIO_GOAL * 100)} %`,
        value: ratio === undefined ? '–' : `${(ratio * 100).toFixed(0)} %`,
        met: ratio === undefined ? undefined : ratio >= RATIO_GOAL && clean,
      };
    });
  },
};
