/**
 * The embedded broker node serving clients of another process over TCP loopback: two plain
 * MQTT.js clients (bench/clients.ts), a publisher and a subscriber, 64 B at QoS 0, 1 and 2,
 * once on MQTT 3.1.1 and once on MQTT 5, and the same clients on MQTT 3.1.1 against Mosquitto,
 * side by side in one run; the figure is messages received by the subscriber per second, and
 * the ratios MQTT 5 / MQTT 3.1.1 and embedded broker / Mosquitto (both on MQTT 3.1.1).
 */
import { caseLabel, problemLines, protocolLabel, type BenchReport, type Target } from '../report.js';
import type { ClientsJob, ProtocolVersion, QoS } from '../types.js';
import {
  deliveryNotes,
  deliveryProblems,
  fmt,
  resultOf,
  scaled,
  type JobKind,
  type PlannedJob,
  type RunPlan,
} from './kind.js';
import { ratiosTo, repeatSuffix, rotations, warmupFor, withRun } from './throughput.js';

const PROTOCOLS: readonly ProtocolVersion[] = [4, 5];
/** The embedded broker node on each MQTT version, and Mosquitto on MQTT 3.1.1. */
type ClientsKey = ProtocolVersion | 'mosquitto';
const KEYS: readonly ClientsKey[] = [...PROTOCOLS, 'mosquitto'];

/** Messages of each QoS: a few seconds each on a 2-core machine, where both clients share one process. */
const CLIENT_CASES: { qos: QoS; messages: number }[] = [
  { qos: 0, messages: 200_000 },
  { qos: 1, messages: 100_000 },
  { qos: 2, messages: 50_000 },
];

/** The issue's goal: MQTT 5 costs at most 15 % of MQTT 3.1.1's throughput. */
const RATIO_GOAL = 0.85;
/** The issue's goal: the embedded broker at least as fast as Mosquitto. */
const MOSQUITTO_RATIO_GOAL = 1;

/** The measured phase stops sending after this long, whatever was sent. */
const MAX_SECONDS = 30;

export const clients: JobKind = {
  name: 'clients',
  plan(run: RunPlan, report: BenchReport): PlannedJob[] {
    const { scale, repeat: repeats, stallMs } = run.settings;
    report.clients = CLIENT_CASES.map(({ qos, messages }) => ({
      qos,
      size: 64,
      messages: scaled(messages, scale),
      versions: {},
    }));
    return rotations(CLIENT_CASES.length, KEYS, repeats).map(({ index, key, repeat }): PlannedJob => {
      const summary = report.clients[index];
      const protocolVersion = key === 'mosquitto' ? 4 : key;
      const broker = key === 'mosquitto' ? 'mosquitto' : 'embedded';
      const job: ClientsJob = {
        ...run.shared,
        kind: 'clients',
        name: `clients-qos${summary.qos}-64b-${key === 'mosquitto' ? 'mosquitto' : `v${key}`}${repeatSuffix(repeat, repeats)}`,
        variant: 'embedded',
        broker,
        protocolVersion,
        qos: summary.qos,
        size: summary.size,
        messages: summary.messages,
        warmupMessages: warmupFor(summary.messages),
        maxSeconds: MAX_SECONDS,
      };
      const brokerLabel = broker === 'mosquitto' ? 'Mosquitto' : 'embedded broker';
      const what = `${caseLabel(job.qos, job.size)}, ${brokerLabel}, MQTT.js clients over TCP, ${protocolLabel(protocolVersion)}`;
      return {
        job,
        timeoutMs: 150_000,
        label: `${caseLabel(job.qos, job.size)}, ${fmt(job.messages)} messages, ${brokerLabel} ← MQTT.js clients of another process, ${protocolLabel(protocolVersion)}`,
        read(jobResult) {
          const result = resultOf(jobResult, 'throughput');
          if (key === 'mosquitto') summary.mosquitto = withRun(summary.mosquitto, result);
          else summary.versions[key] = withRun(summary.versions[key], result);
          summary.ratio = ratiosTo(summary.versions, 4, [5])[5];
          const ours = summary.versions[4]?.rate;
          const theirs = summary.mosquitto?.rate;
          summary.mosquittoRatio = ours !== undefined && theirs ? ours / theirs : undefined;
          const problems = deliveryProblems(what, job.qos, result.delivery, stallMs);
          if (result.capped)
            problems.push(
              `${what}: stopped sending after ${job.maxSeconds} s, before all messages were sent`,
            );
          return {
            figure: `${fmt(result.rate)} msg/s${deliveryNotes(result.delivery)}`,
            problems: [...problems, ...problemLines(what, result.problems)],
          };
        },
      };
    });
  },
  targets(report: BenchReport): Target[] {
    return report.clients.flatMap(({ qos, size, ratio, versions, mosquitto, mosquittoRatio }) => {
      const clean = PROTOCOLS.every((v) => versions[v]?.lost === 0 && !versions[v]?.stalled);
      const mosquittoClean = clean && mosquitto?.lost === 0 && !mosquitto.stalled;
      return [
        {
          what: `${caseLabel(qos, size)}, embedded broker, MQTT.js clients over TCP, MQTT 5 / MQTT 3.1.1`,
          goal: `≥ ${Math.round(RATIO_GOAL * 100)} %`,
          value: ratio === undefined ? '–' : `${(ratio * 100).toFixed(0)} %`,
          met: ratio === undefined ? undefined : ratio >= RATIO_GOAL && clean,
        },
        {
          what: `${caseLabel(qos, size)}, MQTT.js clients over TCP, MQTT 3.1.1, embedded broker / Mosquitto`,
          goal: `≥ ${Math.round(MOSQUITTO_RATIO_GOAL * 100)} %`,
          value: mosquittoRatio === undefined ? '–' : `${(mosquittoRatio * 100).toFixed(0)} %`,
          met:
            mosquittoRatio === undefined
              ? undefined
              : mosquittoRatio >= MOSQUITTO_RATIO_GOAL && mosquittoClean,
        },
      ];
    });
  },
};
