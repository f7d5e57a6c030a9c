/**
 * The soak: a long paced run through one variant, RSS sampled after a forced gc; the
 * verdict is whether RSS grew from the first sample to the last.
 */
import { slope } from '../measurement.js';
import { soakPersistenceLabel, type BenchReport, type SoakSummary, type Target } from '../report.js';
import { VARIANT_LABELS, type PacedJob, type SoakResult } from '../types.js';
import { fmt, resultOf, type JobKind, type PlannedJob, type RunPlan } from './kind.js';
import { readPaced } from './latency.js';

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

export const soak: JobKind = {
  name: 'soak',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { soakSeconds, soakRate, soakVariant, soakPersistence, stallMs } = run.settings;
    if (soakSeconds === 0) return [];
    const warmupSeconds = Math.min(10, Math.max(2, Math.round(soakSeconds / 6)));
    const job: PacedJob = {
      ...run.shared,
      kind: 'soak',
      name: `soak-qos1-64b-${soakVariant}${soakPersistence === 'none' ? '' : `-${soakPersistence}`}`,
      variant: soakVariant,
      persistence: soakPersistence,
      qos: 1,
      size: 64,
      rate: soakRate,
      warmupSeconds,
      seconds: soakSeconds,
      sampleEvery: 5,
    };
    const planned: PlannedJob = {
      job,
      timeoutMs: (soakSeconds + warmupSeconds + 120) * 1000,
      label: `soak at ${fmt(job.rate)} msg/s for ${job.seconds} s, ${VARIANT_LABELS[job.variant]}${soakPersistenceLabel(job.persistence)}`,
      read(jobResult) {
        const result = resultOf(jobResult, 'soak');
        report.soak = soakSummary(result);
        return readPaced(job, result, stallMs);
      },
    };
    return [planned];
  },
  targets(report: BenchReport): Target[] {
    if (!report.soak) return [];
    const { soakSeconds, soakRate, soakPersistence } = report.settings;
    return [
      {
        what: `no RSS growth, ${soakSeconds} s at ${fmt(soakRate)} msg/s${soakPersistenceLabel(soakPersistence)}`,
        goal: '< 10 % or < 20 MB',
        value: `${report.soak.growthMB >= 0 ? '+' : ''}${report.soak.growthMB.toFixed(1)} MB`,
        met: !report.soak.leak && report.soak.result.delivery.lost === 0,
      },
    ];
  },
};
