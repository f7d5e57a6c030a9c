/**
 * What a kind of job is to bench/run.ts: the jobs it plans for a run, how it reads
 * each one's result into the report, and its rows of the targets table. One module
 * per kind in this folder; this one holds what they share.
 */
import type { BenchReport, Settings, Target } from '../report.js';
import type { Delivery, Job, JobResult, QoS, Variant } from '../types.js';

/** A kind of job, by the name `--skip` takes. */
export type Stage =
  | 'throughput'
  | 'durable'
  | 'receipts'
  | 'clients'
  | 'tcp'
  | 'scale'
  | 'backlog'
  | 'dedupe'
  | 'latency'
  | 'soak'
  | 'monitor';

/** Messages of one QoS and size; N is picked so the case runs a few seconds on a 2-core machine. */
export interface BenchCase {
  name: string;
  qos: QoS;
  size: number;
  messages: number;
}

/** What every job of a run carries: the run's random payload bytes, the window, the stall limit, the profile directory. */
export type JobShared = Pick<Job, 'payloadHex' | 'window' | 'stallMs' | 'profileDir'>;

/** What the kinds plan from: the run's settings and the cases and variants asked for. */
export interface RunPlan {
  settings: Settings;
  /** The throughput cases and the variants of `--cases` and `--variants`. */
  cases: readonly BenchCase[];
  variants: readonly Variant[];
  shared: JobShared;
}

/** What a job's result says on its progress line, and the problems it shows, one line each. */
export interface JobReading {
  figure: string;
  problems: string[];
}

export interface PlannedJob {
  job: Job;
  /** The worker is stopped when it has not answered after this long. */
  timeoutMs: number;
  /** What the job is, on its progress line. */
  label: string;
  /** Records the worker's result in the report, and says what it shows. */
  read(result: JobResult): JobReading;
}

export interface JobKind {
  name: Stage;
  /**
   * Its jobs in this run. Their results go into `report` as they come, so the report is
   * whole after the last job, whichever of them failed.
   */
  plan(run: RunPlan, report: BenchReport): PlannedJob[];
  /** Its rows of the targets table, once every job ran. */
  targets?(report: BenchReport): Target[];
}

/** A message count times --scale, at least 1,000. */
export function scaled(messages: number, scale: number): number {
  return Math.max(1000, Math.round(messages * scale));
}

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** The worker answers a job with a result of the job's kind: anything else is a bug, and fails the job. */
export function resultOf<K extends JobResult['kind']>(
  result: JobResult,
  kind: K,
): Extract<JobResult, { kind: K }> {
  if (result.kind !== kind) throw new Error(`a ${kind} job answered with a ${result.kind} result`);
  return result as Extract<JobResult, { kind: K }>;
}

/** What follows a figure when messages were lost, stalled or duplicated: ` (3 lost, STALLED)`. */
export function deliveryNotes(delivery: Delivery): string {
  const notes = [
    delivery.lost ? `${delivery.lost} lost` : '',
    delivery.stalled ? 'STALLED' : '',
    delivery.duplicates ? `${delivery.duplicates} dup` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return notes ? ` (${notes})` : '';
}

/** Loss, a stall and duplicates at the sink, one problem line each. */
export function deliveryProblems(where: string, qos: QoS, delivery: Delivery, stallMs: number): string[] {
  const lines: string[] = [];
  if (delivery.lost) lines.push(`${where}: ${delivery.lost} of ${delivery.sent} QoS ${qos} messages lost`);
  if (delivery.stalled)
    lines.push(
      `${where}: stalled — ${delivery.sent - delivery.received} messages outstanding, nothing received for ${stallMs / 1000} s`,
    );
  if (delivery.duplicates) lines.push(`${where}: ${delivery.duplicates} duplicates`);
  return lines;
}
