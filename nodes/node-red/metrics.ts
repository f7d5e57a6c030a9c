/**
 * The metrics endpoint, `GET <httpAdminRoot>/durable-mqtt/metrics`: the package's counters in
 * Prometheus' text format, behind Node-RED's admin authentication (the `durable-mqtt.read`
 * permission, which a user with `read` has). Off unless settings.js says `durableMqtt: { metrics: true }`;
 * when off the route does not exist (404). Counters and names only: no credentials, no payloads.
 */
import type { NodeAPI } from 'node-red';
import type { BrokerStatistics } from '../lib/broker/traffic.js';
import type { DurablePublisher } from '../lib/outbox/durable-publisher.js';
import { PROMETHEUS_CONTENT_TYPE, formatMetrics, type Metric } from '../lib/prometheus-text.js';

/** A node the endpoint reports on: its id, its name, and its numbers now (undefined: not running). */
interface BrokerSource {
  id: string;
  name: string;
  statistics(): Promise<BrokerStatistics> | undefined;
}

const brokers = new Map<string, BrokerSource>();

/** An out node with an outbox, and what became of its messages since its start. */
interface OutboxSource {
  id: string;
  name: string;
  publisher: DurablePublisher<unknown>;
  fates: { delivered: number; dropped: number; refused: number };
}

const outboxes = new Map<string, OutboxSource>();

/** A dedupe node's keys held and the copies it let pass and caught since its start. */
interface DedupeSource {
  id: string;
  name: string;
  read(): { keys: number; passed: number; duplicates: number };
}

const dedupes = new Map<string, DedupeSource>();

/** Whether settings.js turned the endpoint on. */
export function metricsEnabled(RED: NodeAPI): boolean {
  const settings = RED.settings as unknown as { durableMqtt?: { metrics?: unknown } };
  return settings.durableMqtt?.metrics === true;
}

/**
 * Reports on an out node's outbox until the returned function is called; nothing when the metrics
 * are off, so an outbox then has no listener more than its node's own.
 */
export function reportOutbox(
  RED: NodeAPI,
  node: { id: string; name: string; publisher: DurablePublisher<unknown> },
): () => void {
  if (!metricsEnabled(RED)) return () => undefined;
  const source: OutboxSource = { ...node, fates: { delivered: 0, dropped: 0, refused: 0 } };
  node.publisher.on('delivered', () => source.fates.delivered++);
  node.publisher.on('dropped', () => source.fates.dropped++);
  node.publisher.on('refused', () => source.fates.refused++);
  outboxes.set(node.id, source);
  return () => {
    if (outboxes.get(node.id) === source) outboxes.delete(node.id);
  };
}

type OutboxMetric = [name: string, type: Metric['type'], help: string, value: (s: OutboxSource) => number];

const OUTBOX_METRICS: OutboxMetric[] = [
  ['messages', 'gauge', 'Messages held, waiting or in flight.', (s) => s.publisher.outbox.count],
  ['bytes', 'gauge', 'Bytes of the messages held.', (s) => s.publisher.outbox.bytes],
  ['oldest_age_seconds', 'gauge', 'Age of the oldest message held; 0 when empty.', (s) => oldestAge(s)],
  ['delivered_total', 'counter', 'Messages the broker acknowledged.', (s) => s.fates.delivered],
  ['dropped_total', 'counter', 'Messages dropped to respect a bound.', (s) => s.fates.dropped],
  ['refused_total', 'counter', 'Messages the broker refused.', (s) => s.fates.refused],
];

function oldestAge(source: OutboxSource): number {
  const queuedAt = source.publisher.outbox.oldestQueuedAt;
  return queuedAt === undefined ? 0 : Math.max(0, (Date.now() - queuedAt) / 1000);
}

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

/** Reports on a dedupe node until the returned function is called; nothing when the metrics are off. */
export function reportDedupe(RED: NodeAPI, source: DedupeSource): () => void {
  if (!metricsEnabled(RED)) return () => undefined;
  dedupes.set(source.id, source);
  return () => {
    if (dedupes.get(source.id) === source) dedupes.delete(source.id);
  };
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

/** Reports on an embedded broker until the returned function is called. */
export function reportBroker(source: BrokerSource): () => void {
  brokers.set(source.id, source);
  return () => {
    if (brokers.get(source.id) === source) brokers.delete(source.id);
  };
}

type BrokerMetric = [
  name: string,
  type: Metric['type'],
  help: string,
  value: (s: BrokerStatistics) => number,
];

const BROKER_METRICS: BrokerMetric[] = [
  ['clients_connected', 'gauge', 'Clients connected.', (s) => s.clientsConnected],
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
    [...brokers.values()].map(async (source) => ({ source, statistics: await source.statistics() })),
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
        const metrics = [...broker, ...outboxMetrics(), ...dedupeMetrics()];
        // Set as is: Express' res.type() and res.send() would move the charset before the version.
        res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE);
        res.end(formatMetrics(metrics));
      },
      (error: Error) => res.status(500).type('text/plain').send(error.message),
    );
  });
}
