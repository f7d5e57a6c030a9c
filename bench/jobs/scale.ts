/**
 * Many TCP clients against one broker (bench/scale.ts, bench/scale-load.ts): by default 10,000
 * clients of two other processes, each publishing one QoS 1 message every 10 s to its own topic,
 * one in node of this package subscribed to `+/#`; once against the embedded broker node, once
 * against Mosquitto, in the same run. Figures: RSS per connected client and CPU of the broker
 * process, messages lost; the goal is ours within 2× of Mosquitto's memory per client. Two memory
 * references beside them, the same clients connecting and publishing nothing (bench/scale-reference.ts):
 * a bare Node.js TCP server, what any Node.js broker pays per connection, and Aedes as it comes.
 */
import type { BenchReport, Target } from '../report.js';
import {
  SCALE_BROKERS,
  SCALE_REFERENCES,
  type ScaleBroker,
  type ScaleReference,
  type ScaleReferenceResult,
  type ScaleResult,
} from '../scale-types.js';
import { fmt, type JobKind, type PlannedJob, type RunPlan } from './kind.js';

/** One message per client every this many seconds. */
export const SCALE_INTERVAL_SECONDS = 10;
export const SCALE_CLIENTS = 10_000;
export const SCALE_SECONDS = 60;
/** The goal: the embedded broker's RSS per client within 2× of Mosquitto's. */
const MEMORY_RATIO_GOAL = 2;

const BROKER_LABELS: Record<ScaleBroker, string> = {
  embedded: 'embedded broker node',
  mosquitto: 'Mosquitto',
};

const REFERENCE_LABELS: Record<ScaleReference, string> = {
  floor: 'Node.js floor (bare TCP server)',
  aedes: 'plain Aedes',
};

export interface ScaleSummary {
  clients: number;
  seconds: number;
  intervalSeconds: number;
  brokers: Partial<Record<ScaleBroker, ScaleResult>>;
  /** The memory references: the same clients, connected only. */
  references: Partial<Record<ScaleReference, ScaleReferenceResult>>;
  /** Ours / Mosquitto, RSS per client and CPU time. */
  memoryRatio?: number;
  cpuRatio?: number;
}

/** RSS per client as a multiple of Mosquitto's in the same run, when Mosquitto's was measured. */
function timesMosquitto(summary: ScaleSummary, perClientKB: number): string {
  const mosquitto = summary.brokers.mosquitto;
  return mosquitto && mosquitto.perClientKB > 0
    ? `${(perClientKB / mosquitto.perClientKB).toFixed(1)}×`
    : '–';
}

function deliveryProblems(result: ScaleResult): string[] {
  const what = `${fmt(result.clients)} clients, ${BROKER_LABELS[result.broker]}`;
  const lines: string[] = [];
  if (result.missing)
    lines.push(`${what}: ${result.missing} of ${result.sent} QoS 1 messages never reached the in node`);
  if (result.acknowledged < result.sent)
    lines.push(`${what}: ${result.sent - result.acknowledged} of ${result.sent} publications had no PUBACK`);
  if (result.duplicates) lines.push(`${what}: ${result.duplicates} duplicates`);
  if (result.unexpectedCloses)
    lines.push(`${what}: the broker closed ${result.unexpectedCloses} client connections`);
  if (result.lateMs > 2000)
    lines.push(`${what}: the load generators fell behind (a publication ${fmt(result.lateMs)} ms late)`);
  for (const error of result.errors) lines.push(`${what}: ${error}`);
  return lines;
}

export const scale: JobKind = {
  name: 'scale',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scaleClients: clients, scaleSeconds: seconds } = run.settings;
    const summary: ScaleSummary = {
      clients,
      seconds,
      intervalSeconds: SCALE_INTERVAL_SECONDS,
      brokers: {},
      references: {},
    };
    report.scale = summary;
    const brokerJobs = SCALE_BROKERS.map((broker): PlannedJob => ({
      job: {
        ...run.shared,
        kind: 'scale',
        name: `scale-${clients}-${broker}`,
        variant: 'embedded',
        qos: 1,
        size: 0,
        broker,
        clients,
        intervalSeconds: SCALE_INTERVAL_SECONDS,
        seconds,
      },
      // Connecting takes up to a minute at 10,000 clients on 2 shared cores.
      timeoutMs: (seconds + 240 + clients / 50) * 1000,
      label: `${fmt(clients)} TCP clients, a QoS 1 message each every ${SCALE_INTERVAL_SECONDS} s for ${seconds} s, ${BROKER_LABELS[broker]}`,
      read(jobResult) {
        if (jobResult.kind !== 'scale')
          throw new Error(`a scale job answered with a ${jobResult.kind} result`);
        const result = jobResult;
        summary.brokers[broker] = result;
        const { embedded, mosquitto } = summary.brokers;
        if (embedded && mosquitto) {
          summary.memoryRatio = embedded.perClientKB / mosquitto.perClientKB;
          summary.cpuRatio = embedded.cpuSeconds / mosquitto.cpuSeconds;
        }
        return {
          figure:
            `${result.perClientKB.toFixed(1)} KB RSS per client, CPU ${result.cpuPercent.toFixed(1)} %, ` +
            `${fmt(result.arrived)} of ${fmt(result.sent)} messages arrived (connected in ${result.connectSeconds.toFixed(1)} s)`,
          problems: deliveryProblems(result),
        };
      },
    }));
    const referenceJobs = SCALE_REFERENCES.map((server): PlannedJob => ({
      job: {
        ...run.shared,
        kind: 'scale-reference',
        name: `scale-${clients}-${server}`,
        variant: 'embedded',
        qos: 1,
        size: 0,
        server,
        clients,
        intervalSeconds: SCALE_INTERVAL_SECONDS,
      },
      timeoutMs: (120 + clients / 50) * 1000,
      label: `${fmt(clients)} TCP clients connecting, nothing published, ${REFERENCE_LABELS[server]}`,
      read(jobResult) {
        if (jobResult.kind !== 'scale-reference')
          throw new Error(`a scale reference job answered with a ${jobResult.kind} result`);
        summary.references[server] = jobResult;
        return {
          figure:
            `${jobResult.perClientKB.toFixed(1)} KB RSS per client, ${timesMosquitto(summary, jobResult.perClientKB)} ` +
            `Mosquitto's (connected in ${jobResult.connectSeconds.toFixed(1)} s)`,
          problems: [],
        };
      },
    }));
    return [...brokerJobs, ...referenceJobs];
  },
  targets(report: BenchReport): Target[] {
    const summary = report.scale;
    if (!summary) return [];
    const results = SCALE_BROKERS.map((b) => summary.brokers[b]);
    const clean = results.every((r) => r && r.missing === 0 && r.clients === summary.clients);
    const ratio = summary.memoryRatio;
    return [
      {
        what: `${fmt(summary.clients)} TCP clients, QoS 1 every ${summary.intervalSeconds} s: RSS per client, embedded broker / Mosquitto`,
        goal: `≤ ${MEMORY_RATIO_GOAL}×, none lost`,
        value: ratio === undefined ? '–' : `${ratio.toFixed(2)}×`,
        met: ratio === undefined ? undefined : ratio <= MEMORY_RATIO_GOAL && clean,
      },
    ];
  },
};

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** The scale job's table: one row per broker, then one per memory reference, for bench/report.ts. */
export function scaleTable(summary: ScaleSummary) {
  return {
    headers: [
      'broker',
      'clients',
      'connect s',
      'RSS MB (idle → connected → after)',
      'RSS/client KB',
      '× Mosquitto',
      'CPU %',
      'CPU s',
      'messages sent',
      'arrived',
      'missing',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'] as ('l' | 'r')[],
    rows: [
      ...SCALE_BROKERS.flatMap((broker) => {
        const r = summary.brokers[broker];
        if (!r) return [];
        return [
          [
            BROKER_LABELS[broker],
            int(r.clients),
            r.connectSeconds.toFixed(1),
            `${r.rssIdleMB.toFixed(0)} → ${r.rssConnectedMB.toFixed(0)} → ${r.rssAfterMB.toFixed(0)}`,
            r.perClientKB.toFixed(1),
            timesMosquitto(summary, r.perClientKB),
            r.cpuPercent.toFixed(1),
            r.cpuSeconds.toFixed(1),
            int(r.sent),
            int(r.arrived),
            String(r.missing),
          ],
        ];
      }),
      ...SCALE_REFERENCES.flatMap((server) => {
        const r = summary.references[server];
        if (!r) return [];
        return [
          [
            REFERENCE_LABELS[server],
            int(r.clients),
            r.connectSeconds.toFixed(1),
            `${r.rssIdleMB.toFixed(0)} → ${r.rssConnectedMB.toFixed(0)} → –`,
            r.perClientKB.toFixed(1),
            timesMosquitto(summary, r.perClientKB),
            ...Array<string>(5).fill('–'),
          ],
        ];
      }),
    ],
  };
}

/** What the scale figures are, under the table. */
export function scaleNote(summary: ScaleSummary): string {
  const ratios =
    summary.memoryRatio === undefined
      ? ''
      : ` Embedded broker / Mosquitto: RSS per client ${summary.memoryRatio.toFixed(2)}×, CPU ${summary.cpuRatio?.toFixed(2)}×.`;
  return (
    `${int(summary.clients)} clients in two other processes (raw TCP, mqtt-packet), MQTT 3.1.1, clean sessions, ` +
    `each one QoS 1 message every ${summary.intervalSeconds} s to its own topic, spread over the interval, ` +
    `for ${summary.seconds} s once all were connected; one durable-mqtt-in on +/# at QoS 1 in Node-RED counts them. ` +
    'RSS (VmRSS) of the broker process: the Node-RED process for the embedded broker (after forced gcs), ' +
    'mosquitto for Mosquitto; per client = (connected − idle) / clients. CPU: user + system time of that process ' +
    "over the window, % of one core; the embedded broker's includes the in node and Node-RED, which for Mosquitto run " +
    `in another process.${ratios} ` +
    'The last rows are memory references, measured the same way (same clients and CONNECT, RSS after three forced gcs, ' +
    '(connected − idle) / clients) on a process of their own with no subscriber, once every client has its CONNACK, ' +
    'nothing published: Node.js floor = a bare net.createServer that answers each CONNECT with a CONNACK and reads ' +
    'nothing else, what any Node.js broker pays per connection; plain Aedes = the aedes package as it comes ' +
    '(in-memory persistence, no patch of this package) on net.createServer.'
  );
}
