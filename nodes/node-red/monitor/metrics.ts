/**
 * The metrics endpoint, `GET <httpAdminRoot>/durable-mqtt/metrics`: the package's counters in
 * Prometheus' text format, behind Node-RED's admin authentication (the `durable-mqtt.read`
 * permission, which a user with `read` has). Off unless settings.js says `durableMqtt: { metrics: true }`;
 * when off the route does not exist (404). Counters and names only: no credentials, no payloads.
 */
import type { NodeAPI } from 'node-red';
import type { BrokerStatistics } from '../../lib/broker/traffic.js';
import { PROMETHEUS_CONTENT_TYPE, formatMetrics, type Metric } from '../../lib/prometheus-text.js';
import { oldestAgeSeconds } from './views.js';
import {
  brokers,
  dedupes,
  outboxes,
  quarantines,
  type BrokerSource,
  type DedupeSource,
  type OutboxSource,
} from './registry.js';

/** Whether settings.js turned the endpoint on. */
export function metricsEnabled(RED: NodeAPI): boolean {
  const settings = RED.settings as unknown as { durableMqtt?: { metrics?: unknown } };
  return settings.durableMqtt?.metrics === true;
}

type OutboxMetric = [name: string, type: Metric['type'], help: string, value: (s: OutboxSource) => number];

const OUTBOX_METRICS: OutboxMetric[] = [
  ['messages', 'gauge', 'Messages held, waiting or in flight.', (s) => s.publisher.outbox.count],
  ['bytes', 'gauge', 'Bytes of the messages held.', (s) => s.publisher.outbox.bytes],
  [
    'oldest_age_seconds',
    'gauge',
    'Age of the oldest message held; 0 when empty.',
    (s) => oldestAgeSeconds(s),
  ],
  ['delivered_total', 'counter', 'Messages the broker acknowledged.', (s) => s.fates?.delivered ?? 0],
  [
    'dropped_total',
    'counter',
    'Messages dropped to respect a bound, or purged.',
    (s) => s.fates?.dropped ?? 0,
  ],
  ['refused_total', 'counter', 'Messages the broker refused.', (s) => s.fates?.refused ?? 0],
];

function outboxMetrics(): Metric[] {
  return OUTBOX_METRICS.map(([name, type, help, value]) => ({
    name: `durable_mqtt_outbox_${name}`,
    type,
    help: `Out node's outbox: ${help}`,
    samples: [...outboxes.values()].map((source) => ({
      labels: { node: source.id, name: source.name },
      value: value(source),
    })),
  }));
}

function dedupeMetrics(): Metric[] {
  const read = [...dedupes.values()].map((source) => ({
    labels: { node: source.id, name: source.name },
    values: source.read(),
  }));
  const metric = (
    name: string,
    type: Metric['type'],
    help: string,
    value: keyof ReturnType<DedupeSource['read']>,
  ): Metric => ({
    name: `durable_mqtt_dedupe_${name}`,
    type,
    help: `Dedupe node: ${help}`,
    samples: read.map(({ labels, values }) => ({ labels, value: values[value] })),
  });
  return [
    metric('keys', 'gauge', 'Keys held in its seen-set.', 'keys'),
    metric('passed_total', 'counter', 'First copies let through.', 'passed'),
    metric('duplicates_total', 'counter', 'Duplicates caught.', 'duplicates'),
  ];
}

/** Each in node with a quarantine: the messages it holds there, waiting for someone to look. */
function quarantineMetrics(): Metric[] {
  return [
    {
      name: 'durable_mqtt_quarantine_messages',
      type: 'gauge',
      help: "In node's quarantine: messages held, quarantined and neither released nor discarded.",
      samples: [...quarantines.values()].map((source) => ({
        labels: { node: source.id, name: source.name },
        value: source.count(),
      })),
    },
  ];
}

type BrokerMetric = [
  name: string,
  type: Metric['type'],
  help: string,
  value: (s: BrokerStatistics) => number,
];

const BROKER_METRICS: BrokerMetric[] = [
  ['clients_connected', 'gauge', 'Clients connected.', (s) => s.clientsConnected],
  ['sessions_offline', 'gauge', 'Persistent sessions whose client is away.', (s) => s.clientsDisconnected],
  ['subscriptions', 'gauge', 'Subscriptions of the connected clients.', (s) => s.subscriptions],
  ['retained_messages', 'gauge', 'Retained messages held.', (s) => s.retainedMessages],
  ['uptime_seconds', 'gauge', 'Seconds since the broker started.', (s) => s.uptimeSeconds],
  ['packets_received_total', 'counter', 'MQTT packets received.', (s) => s.traffic.packetsReceived],
  ['packets_sent_total', 'counter', 'MQTT packets sent.', (s) => s.traffic.packetsSent],
  ['publish_received_total', 'counter', 'PUBLISH packets received.', (s) => s.traffic.publishReceived],
  ['publish_sent_total', 'counter', 'PUBLISH packets sent.', (s) => s.traffic.publishSent],
  ['bytes_received_total', 'counter', 'Bytes received from clients.', (s) => s.traffic.bytesReceived],
  ['bytes_sent_total', 'counter', 'Bytes sent to clients.', (s) => s.traffic.bytesSent],
];

/** The metrics of every running embedded broker, labelled with its node's id and name. */
async function brokerMetrics(): Promise<Metric[]> {
  const read = await Promise.all(
    [...brokers.values()].map(async (source) => ({ source, statistics: await source.broker.statistics() })),
  );
  const running = read.filter(
    (entry): entry is { source: BrokerSource; statistics: BrokerStatistics } =>
      entry.statistics !== undefined,
  );
  const labels = (source: BrokerSource) => ({ node: source.id, name: source.name });
  return [
    ...BROKER_METRICS.map(([name, type, help, value]) => ({
      name: `durable_mqtt_broker_${name}`,
      type,
      help: `Embedded broker: ${help}`,
      samples: running.map(({ source, statistics }) => ({
        labels: labels(source),
        value: value(statistics),
      })),
    })),
    {
      name: 'durable_mqtt_broker_info',
      type: 'gauge',
      help: 'Embedded broker: its version, as a label.',
      samples: running.map(({ source, statistics }) => ({
        labels: { ...labels(source), version: statistics.version },
        value: 1,
      })),
    },
  ];
}

/** The Node-RED admin apps the endpoint is on: each node file asks, the first one adds it. */
const served = new WeakSet<object>();

/** Adds the endpoint to Node-RED's admin API, if settings.js turned it on. */
export function serveMetrics(RED: NodeAPI): void {
  if (!metricsEnabled(RED) || served.has(RED.httpAdmin)) return;
  served.add(RED.httpAdmin);
  RED.httpAdmin.get('/durable-mqtt/metrics', RED.auth.needsPermission('durable-mqtt.read'), (_req, res) => {
    brokerMetrics().then(
      (broker) => {
        const metrics = [...broker, ...outboxMetrics(), ...dedupeMetrics(), ...quarantineMetrics()];
        // Set as is: Express' res.type() and res.send() would move the charset before the version.
        res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE);
        res.end(formatMetrics(metrics));
      },
      (error: Error) => res.status(500).type('text/plain').send(error.message),
    );
  });
}
