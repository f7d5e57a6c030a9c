/**
 * The dedupe node: distinct keys straight into it, with its seen-set in memory and on
 * disk; the figures are messages per second through it and its heap per key.
 */
import { problemLines, type BenchReport } from '../report.js';
import type { DedupeJob } from '../types.js';
import { fmt, resultOf, type JobKind, type PlannedJob, type RunPlan } from './kind.js';

/** Dedupe node: distinct keys through it, five times its bound, so it evicts for most of the run. */
const DEDUPE_MAX_ENTRIES = 100_000;
const DEDUPE_MESSAGES = 500_000;

export const dedupe: JobKind = {
  name: 'dedupe',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    return [false, true].map((persist) => {
      const job: DedupeJob = {
        ...run.shared,
        kind: 'dedupe',
        name: `dedupe-64b-${persist ? 'persist' : 'memory'}`,
        variant: 'embedded',
        qos: 1,
        size: 64,
        messages: Math.max(DEDUPE_MAX_ENTRIES, Math.round(DEDUPE_MESSAGES * run.settings.scale)),
        maxEntries: DEDUPE_MAX_ENTRIES,
        persist,
      };
      return {
        job,
        timeoutMs: 300_000,
        label: `dedupe node, ${fmt(job.messages)} distinct keys, maxEntries ${fmt(job.maxEntries)}, persist ${persist ? 'on' : 'off'}`,
        read(jobResult) {
          const result = resultOf(jobResult, 'dedupe');
          report.dedupe.push({ persist, messages: job.messages, maxEntries: job.maxEntries, result });
          const where = `dedupe, persist ${persist ? 'on' : 'off'}`;
          const problems: string[] = [];
          if (result.delivery.lost)
            problems.push(`${where}: ${result.delivery.lost} first copies did not come out`);
          if (result.delivery.stalled) problems.push(`${where}: stalled`);
          return {
            figure: `${fmt(result.rate)} msg/s, heap ${result.heapMB.toFixed(0)} MB after gc (${fmt(result.bytesPerKey)} B per key)`,
            problems: [...problems, ...problemLines(where, result.problems)],
          };
        },
      };
    });
  },
};
