/**
 * The offline backlog: messages queued by an out node whose broker cannot be reached,
 * measured in a plain `node-red` process (bench/backlog.ts runs it); the figures are its
 * rate and the RSS holding them.
 */
import { caseLabel, problemLines, type BenchReport, type Target } from '../report.js';
import type { BacklogJob } from '../types.js';
import { fmt, resultOf, type JobKind, type PlannedJob, type RunPlan } from './kind.js';

/** Offline backlog: messages queued by default, most done() outstanding, and the RSS goal. */
export const BACKLOG_MESSAGES = 1_000_000;
export const BACKLOG_OUTSTANDING = 10_000;
const BACKLOG_RSS_GOAL_MB = 200;

export const backlog: JobKind = {
  name: 'backlog',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const messages = run.settings.backlogMessages;
    if (messages === 0) return [];
    const job: BacklogJob = {
      ...run.shared,
      // The stall limit is for completions: LevelDB compactions can hold writes for a while.
      stallMs: 30_000,
      kind: 'backlog',
      name: `backlog-offline-qos1-64b-${messages}`,
      variant: 'tcp',
      qos: 1,
      size: 64,
      messages,
      outstanding: BACKLOG_OUTSTANDING,
      maxMessages: Math.max(2_000_000, messages),
      // Payloads alone are 64 MB at 1,000,000; leave room so the bound never refuses one.
      maxBytes: Math.max(1024 ** 3, messages * 64 * 4),
    };
    const planned: PlannedJob = {
      job,
      // At least 2,000 msg/s, or it failed.
      timeoutMs: (messages / 2000 + 120) * 1000,
      label: `offline backlog in a node-red process, ${fmt(messages)} messages queued, ${caseLabel(job.qos, job.size)}, broker unreachable`,
      read(jobResult) {
        const result = resultOf(jobResult, 'backlog');
        report.backlog = {
          messages: job.messages,
          outstanding: job.outstanding,
          maxMessages: job.maxMessages,
          maxBytes: job.maxBytes,
          result,
          goalMB: BACKLOG_RSS_GOAL_MB,
          met: result.memory.rssMB < BACKLOG_RSS_GOAL_MB && result.queued === job.messages && !result.stalled,
        };
        const notes = [
          result.failed ? `${result.failed} failed` : '',
          result.stalled ? 'STALLED' : '',
          result.stayedOffline ? '' : 'CONNECTED',
        ].filter(Boolean);
        const where = `offline backlog of ${fmt(result.sent)}`;
        const problems: string[] = [];
        if (result.failed)
          problems.push(
            `${where}: ${result.failed} messages failed (done with an error), e.g. ${result.failures.join(' | ')}`,
          );
        if (result.stalled)
          problems.push(
            `${where}: stalled — no completion for ${job.stallMs / 1000} s with ${fmt(result.sent - result.queued - result.failed)} outstanding`,
          );
        if (!result.stayedOffline)
          problems.push(`${where}: the broker config connected, though nothing should listen on its port`);
        if (result.outboxCount !== undefined && result.outboxCount !== result.queued)
          problems.push(
            `${where}: the outbox holds ${fmt(result.outboxCount)} messages, ${fmt(result.queued)} were queued`,
          );
        return {
          figure:
            `${fmt(result.rate)} msg/s, Node-RED RSS ${result.memory.rssMB.toFixed(0)} MB after gc ` +
            `(idle ${result.memory.idleRssMB.toFixed(0)} MB, peak ${result.memory.peakRssMB.toFixed(0)} MB), outbox ${(result.outboxBytes / 1024 ** 2).toFixed(0)} MB on disk` +
            (notes.length ? ` (${notes.join(', ')})` : ''),
          problems: [...problems, ...problemLines(where, result.problems)],
        };
      },
    };
    return [planned];
  },
  targets(report: BenchReport): Target[] {
    const b = report.backlog;
    if (!b) return [];
    return [
      {
        what: `RSS holding ${fmt(b.messages)} queued messages offline (after gc)`,
        goal: `< ${b.goalMB} MB`,
        value: `${b.result.memory.rssMB.toFixed(0)} MB`,
        met: b.met,
      },
    ];
  },
};
