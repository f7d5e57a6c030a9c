/**
 * What the editor's durable mqtt sidebar costs while open: throughput jobs through ours embedded
 * with the monitor sampling (a watch renewed as the open tab renews it, each snapshot serialized
 * as comms sends it) and without, side by side; open / closed per case. With the tab closed
 * nothing is sampled, so "closed" is the package as it runs without the sidebar.
 */
import type { BenchReport, Target } from '../report.js';
import { scaled, type BenchCase, type JobKind, type PlannedJob, type RunPlan } from './kind.js';
import { messagesOf, ratiosTo, repeatSuffix, rotations, throughputJob, withRun } from './throughput.js';
import type { Persistence } from '../types.js';

const SIDEBAR = ['closed', 'open'] as const;

/** Ours embedded at QoS 1, 64 B: without an outbox, and with one (whose deliveries the monitor counts). */
const MONITOR_CASES: (BenchCase & { persistence: Persistence })[] = [
  { name: 'qos1-64b-none', qos: 1, size: 64, messages: 120_000, persistence: 'none' },
  { name: 'qos1-64b-queued', qos: 1, size: 64, messages: 120_000, persistence: 'queued' },
];

/** The bound: the open sidebar costs at most 5 % of the throughput. */
const MIN_OPEN_RATIO = 0.95;

export const monitor: JobKind = {
  name: 'monitor',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats } = run.settings;
    report.monitor = MONITOR_CASES.map((c) => ({
      name: c.name,
      qos: c.qos,
      size: c.size,
      persistence: c.persistence,
      messages: scaled(messagesOf('embedded', c.messages), scale),
      sidebar: {},
    }));
    return rotations(MONITOR_CASES.length, SIDEBAR, repeats).map(({ index, key: sidebar, repeat }) => {
      const c = MONITOR_CASES[index];
      const summary = report.monitor[index];
      const fields = {
        name: `monitor-${c.name}-sidebar-${sidebar}${repeatSuffix(repeat, repeats)}`,
        variant: 'embedded' as const,
        persistence: c.persistence,
        qos: c.qos,
        size: c.size,
        messages: summary.messages,
        watched: sidebar === 'open',
      };
      return throughputJob(run, fields, (result) => {
        summary.sidebar[sidebar] = withRun(summary.sidebar[sidebar], result);
        summary.openRatio = ratiosTo(summary.sidebar, 'closed', ['open']).open;
      });
    });
  },
  targets(report: BenchReport): Target[] {
    return report.monitor.map((summary) => {
      const { open, closed } = summary.sidebar;
      const value = summary.openRatio;
      return {
        what: `QoS 1, 64 B, ours embedded, persistence ${summary.persistence}: sidebar open / closed`,
        goal: `≥ ${Math.round(MIN_OPEN_RATIO * 100)} %`,
        value:
          value === undefined || !open || !closed
            ? '–'
            : `${(value * 100).toFixed(0)} % (${Math.round(open.rate).toLocaleString('en-US')} vs ${Math.round(closed.rate).toLocaleString('en-US')} msg/s)`,
        met: value === undefined ? undefined : value >= MIN_OPEN_RATIO && open?.lost === 0 && !open.stalled,
      };
    });
  },
};
