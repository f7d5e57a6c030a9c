/**
 * Persistence of our out node: throughput jobs through ours embedded with each
 * persistence mode, every mode with the same N, 5 × the case's; figures over `none`'s.
 */
import type { BenchReport, Target } from '../report.js';
import { PERSISTENCE_MODES, type Persistence } from '../types.js';
import { scaled, type BenchCase, type JobKind, type PlannedJob, type RunPlan } from './kind.js';
import { messagesOf, ratiosTo, repeatSuffix, rotations, throughputJob, withRun } from './throughput.js';

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

export const durable: JobKind = {
  name: 'durable',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats } = run.settings;
    report.durable = DURABLE_CASES.map((c) => ({
      name: c.name,
      qos: c.qos,
      size: c.size,
      messages: scaled(c.messages, scale),
      modes: {},
      ratios: {},
    }));
    return rotations(DURABLE_CASES.length, PERSISTENCE_MODES, repeats).map(
      ({ index, key: persistence, repeat }) => {
        const c = DURABLE_CASES[index];
        const summary = report.durable[index];
        const fields = {
          name: `durable-${c.name}-${persistence}${repeatSuffix(repeat, repeats)}`,
          variant: 'embedded' as const,
          persistence,
          qos: c.qos,
          size: c.size,
          // Through ours embedded, every mode with the same N.
          messages: scaled(messagesOf('embedded', c.messages), scale),
        };
        return throughputJob(run, fields, (result) => {
          summary.modes[persistence] = withRun(summary.modes[persistence], result);
          summary.ratios = ratiosTo(summary.modes, 'none', ['queued', 'acknowledged']);
        });
      },
    );
  },
  targets(report: BenchReport): Target[] {
    const list: Target[] = [];
    const summary = report.durable.find((s) => s.qos === 1 && s.size === 64);
    for (const persistence of ['queued', 'acknowledged'] as const) {
      const goal = DURABLE_GOALS[persistence];
      if (!summary || goal === undefined) continue;
      const value = summary.ratios[persistence];
      const mode = summary.modes[persistence];
      list.push({
        what: `QoS 1, 64 B, ours embedded, persistence ${persistence} / none`,
        goal: `≥ ${Math.round(goal * 100)} %`,
        value: value === undefined ? '–' : `${(value * 100).toFixed(0)} %`,
        met: value === undefined ? undefined : value >= goal && mode?.lost === 0 && !mode.stalled,
      });
    }
    return list;
  },
};
