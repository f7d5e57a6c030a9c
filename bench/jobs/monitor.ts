/**
 * What the editor's durable mqtt sidebar costs while open: in one Node-RED runtime per case,
 * phases with the monitor sampling (a watch renewed as the open tab renews it, each snapshot
 * serialized as comms sends it) and without, alternating; open / closed of the medians. At full
 * speed the figure is the rate; at the 10,000 msg/s, where both keep up, the rate
 * received and the CPU time per message. With the tab closed nothing is sampled, so "closed" is
 * the package as it runs without the sidebar.
 */
import { median } from '../measurement.js';
import { problemLines, type BenchReport, type MonitorSummary, type Target } from '../report.js';
import type { MonitorJob, MonitorPhase, Persistence } from '../types.js';
import {
  deliveryProblems,
  fmt,
  resultOf,
  scaled,
  type JobKind,
  type PlannedJob,
  type RunPlan,
} from './kind.js';

interface MonitorCase {
  name: string;
  persistence: Persistence;
  /** Paced at this rate; full speed when unset. */
  rate?: number;
}

/** Ours embedded at QoS 1, 64 B: without an outbox, with one (whose deliveries the monitor counts), and paced. */
const MONITOR_CASES: MonitorCase[] = [
  { name: 'qos1-64b-none', persistence: 'none' },
  { name: 'qos1-64b-queued', persistence: 'queued' },
  { name: 'qos1-64b-none-10000-per-second', persistence: 'none', rate: 10_000 },
];

/** Messages of a full-speed phase (about 2 s here), and the length of a paced one. */
const PHASE_MESSAGES = 300_000;
const PACED_SECONDS = 5;
/** Rounds of one closed and one open phase, per --repeat. */
const ROUNDS = 3;

/** The bound: the open sidebar costs at most 5 % of the throughput. */
const MIN_OPEN_RATIO = 0.95;

const label = (c: MonitorCase) =>
  `QoS 1, 64 B, ours embedded, persistence ${c.persistence}` +
  (c.rate === undefined ? ', full speed' : `, ${fmt(c.rate)} msg/s`);

function medians(phases: MonitorPhase[]) {
  return {
    rate: median(phases.map((p) => p.rate)),
    cpuMicrosecondsPerMessage: median(phases.map((p) => p.cpuMicrosecondsPerMessage)),
  };
}

export const monitor: JobKind = {
  name: 'monitor',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat, stallMs } = run.settings;
    return MONITOR_CASES.map((c) => {
      const job: MonitorJob = {
        ...run.shared,
        kind: 'monitor',
        name: `monitor-${c.name}`,
        variant: 'embedded',
        persistence: c.persistence,
        qos: 1,
        size: 64,
        rate: c.rate,
        seconds: PACED_SECONDS,
        messages: scaled(PHASE_MESSAGES, scale),
        rounds: ROUNDS * repeat,
      };
      const phaseSeconds = c.rate === undefined ? 10 : PACED_SECONDS;
      return {
        job,
        timeoutMs: (job.rounds * 2 + 3) * phaseSeconds * 1000 + 120_000,
        label: `${label(c)}, sidebar closed and open in turn (${job.rounds} rounds)`,
        read(jobResult) {
          const result = resultOf(jobResult, 'monitor');
          const closed = medians(result.closed);
          const open = medians(result.open);
          const summary: MonitorSummary = {
            name: c.name,
            persistence: c.persistence,
            rate: c.rate,
            closed,
            open,
            openRatio: closed.rate > 0 ? open.rate / closed.rate : undefined,
            cpuRatio:
              closed.cpuMicrosecondsPerMessage > 0
                ? open.cpuMicrosecondsPerMessage / closed.cpuMicrosecondsPerMessage
                : undefined,
          };
          report.monitor.push(summary);
          const where = `monitor ${label(c)}`;
          const problems = [...result.closed, ...result.open].flatMap((phase) =>
            deliveryProblems(where, 1, phase.delivery, stallMs),
          );
          return {
            figure:
              `open / closed ${fmt(open.rate)} / ${fmt(closed.rate)} msg/s, ` +
              `CPU ${open.cpuMicrosecondsPerMessage.toFixed(1)} / ${closed.cpuMicrosecondsPerMessage.toFixed(1)} µs/msg`,
            problems: [...problems, ...problemLines(where, result.problems)],
          };
        },
      };
    });
  },
  targets(report: BenchReport): Target[] {
    return report.monitor.map((summary) => {
      const { openRatio, cpuRatio } = summary;
      const percent = (ratio: number | undefined) =>
        ratio === undefined ? '–' : `${(ratio * 100).toFixed(0)} %`;
      return {
        what:
          `QoS 1, 64 B, ours embedded, persistence ${summary.persistence}` +
          (summary.rate === undefined ? '' : ` at ${fmt(summary.rate)} msg/s`) +
          ': sidebar open / closed',
        goal: `≥ ${Math.round(MIN_OPEN_RATIO * 100)} %`,
        value:
          `${percent(openRatio)} (${fmt(summary.open.rate)} vs ${fmt(summary.closed.rate)} msg/s; ` +
          `CPU per message ${percent(cpuRatio)})`,
        met: openRatio === undefined ? undefined : openRatio >= MIN_OPEN_RATIO,
      };
    });
  },
};
