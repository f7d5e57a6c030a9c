/**
 * The views of the monitor protocol (lib/monitor-protocol.ts), read from the registry's nodes.
 * Names, counts and states only: no credentials (a connection's endpoint has no user name or
 * password), no payloads.
 */
import type {
  BrokerView,
  ConnectionView,
  DedupeView,
  OutboxView,
  QuarantineView,
} from '../../lib/monitor-protocol.js';
import { QUARANTINE_LIST_LIMIT } from '../../lib/monitor-protocol.js';
import { describeEndpoint } from '../session-record.js';
import type {
  BrokerSource,
  ConnectionSource,
  DedupeSource,
  OutboxSource,
  QuarantineSource,
} from './registry.js';

/** A broker's view; `rates` come from the sampler. A broker not running shows no client. */
export async function brokerView(source: BrokerSource, rates: BrokerView['rates']): Promise<BrokerView> {
  const inspector = source.broker.inspector;
  const [clients, offlineSessions, retained] = inspector
    ? await Promise.all([inspector.clients(), inspector.offlineSessions(), inspector.retainedCount()])
    : [[], [], 0];
  return {
    id: source.id,
    name: source.name,
    listeners: inspector ? source.listeners() : [],
    clients,
    offlineSessions,
    retainedCount: retained,
    rates,
  };
}

export function connectionView({ id, name, connection }: ConnectionSource): ConnectionView {
  const { since, reconnects, lastError } = connection.history;
  const view: ConnectionView = {
    id,
    name,
    state: connection.state,
    endpoint: describeEndpoint(connection.options.endpoint),
    since,
    reconnects,
    subscriptions: connection.subscriptionHolders().map(({ filter, qos, subscribers }) => ({
      filter,
      qos,
      nodes: subscribers.flatMap((subscriber) => (subscriber.nodeId ? [subscriber.nodeId] : [])),
    })),
  };
  if (lastError !== undefined) view.lastError = lastError;
  return view;
}

/** Seconds the oldest message of an outbox has waited; 0 when it is empty. */
export function oldestAgeSeconds(source: OutboxSource): number {
  const queuedAt = source.publisher.outbox.oldestQueuedAt;
  return queuedAt === undefined ? 0 : Math.max(0, (Date.now() - queuedAt) / 1000);
}

export function outboxView(source: OutboxSource, deliveredPerSecond: number): OutboxView {
  const { outbox } = source.publisher;
  return {
    id: source.id,
    name: source.name,
    connectionId: source.connectionId,
    persistence: source.persistence,
    messages: outbox.count,
    bytes: outbox.bytes,
    inFlight: outbox.inFlightCount,
    oldestAgeSeconds: oldestAgeSeconds(source),
    deliveredPerSecond,
    delivered: source.fates?.delivered ?? 0,
    dropped: source.fates?.dropped ?? 0,
    refused: source.fates?.refused ?? 0,
  };
}

export function dedupeView(source: DedupeSource): DedupeView {
  return { id: source.id, name: source.name, ...source.read() };
}

export function quarantineView(source: QuarantineSource): QuarantineView {
  return {
    id: source.id,
    name: source.name,
    count: source.count(),
    messages: source.list(QUARANTINE_LIST_LIMIT),
  };
}
