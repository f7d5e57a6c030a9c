/**
 * The running nodes the metrics endpoint and the editor's monitor report on, one Map entry each.
 * A node registers when it starts and unregisters with the function it got back; registering
 * attaches nothing to it: what counts its traffic or its messages is attached by a reader
 * (the metrics, when settings.js turns them on; the monitor, while an editor watches).
 */
import type { EmbeddedBroker } from '../../lib/broker/aedes/embedded-broker.js';
import type { BrokerConnection } from '../../lib/connection/broker-connection.js';
import type { DurablePublisher } from '../../lib/outbox/durable-publisher.js';
import type { ListenerView, QuarantinedMessageView } from '../../lib/monitor-protocol.js';

/** An embedded broker node and its broker (running or not). */
export interface BrokerSource {
  id: string;
  name: string;
  broker: EmbeddedBroker;
  /** The listeners open now, the WebSocket one on Node-RED's own server included. */
  listeners(): ListenerView[];
}

/** What became of an outbox's messages since someone started counting. */
export interface OutboxFates {
  delivered: number;
  dropped: number;
  refused: number;
}

/** An out node with an outbox, and what the monitor may ask of it. */
export interface OutboxSource {
  id: string;
  name: string;
  /** The broker config node it publishes through. */
  connectionId: string;
  persistence: 'queued' | 'acknowledged';
  publisher: DurablePublisher<unknown>;
  /** Counted while the metrics or the monitor count; undefined otherwise. */
  fates: OutboxFates | undefined;
  /** Sends what waits now, reconnecting now if the connection waits to retry. */
  retryNow(): void;
  /** Drops every message not handed to the broker yet; `by` names the admin user, for the log. */
  purge(by: string): Promise<number>;
}

/** A dedupe node's keys held and the copies it let pass and caught since its start. */
export interface DedupeSource {
  id: string;
  name: string;
  read(): { keys: number; passed: number; duplicates: number };
}

/** A broker config node and its shared connection. */
export interface ConnectionSource {
  id: string;
  name: string;
  connection: BrokerConnection;
}

/** An in node with `ack: complete` and its quarantine. */
export interface QuarantineSource {
  id: string;
  name: string;
  count(): number;
  /** The newest `limit` messages held, newest first. */
  list(limit: number): QuarantinedMessageView[];
  /** Sends message `key` to the flow again; false when no such message is held. */
  release(key: string): Promise<boolean>;
  /** Forgets message `key`; false when no such message is held. */
  discard(key: string): Promise<boolean>;
}

export const brokers = new Map<string, BrokerSource>();
export const outboxes = new Map<string, OutboxSource>();
export const dedupes = new Map<string, DedupeSource>();
export const connections = new Map<string, ConnectionSource>();
export const quarantines = new Map<string, QuarantineSource>();

/** Adds `source` to `registry` until the returned function is called (a later source of the same id stays). */
function register<Source extends { id: string }>(registry: Map<string, Source>, source: Source): () => void {
  registry.set(source.id, source);
  return () => {
    if (registry.get(source.id) === source) registry.delete(source.id);
  };
}

export const reportBroker = (source: BrokerSource) => register(brokers, source);
/** Told of each outbox that opens, so that a monitor watching counts its fates from its first message. */
export const outboxOpened = new Set<(source: OutboxSource) => void>();

export function reportOutboxSource(source: OutboxSource): () => void {
  const unregister = register(outboxes, source);
  for (const listener of outboxOpened) listener(source);
  return unregister;
}
export const reportDedupe = (source: DedupeSource) => register(dedupes, source);
export const reportConnection = (source: ConnectionSource) => register(connections, source);
export const reportQuarantine = (source: QuarantineSource) => register(quarantines, source);

/**
 * Counts the fates of an outbox's messages until the returned function is called. The metrics
 * count from the node's start, the monitor while it is watched; they share one count.
 */
export function countFates(source: OutboxSource): () => void {
  if (source.fates) return () => undefined;
  const fates: OutboxFates = { delivered: 0, dropped: 0, refused: 0 };
  const delivered = () => fates.delivered++;
  const dropped = () => fates.dropped++;
  const refused = () => fates.refused++;
  source.publisher.on('delivered', delivered);
  source.publisher.on('dropped', dropped);
  source.publisher.on('refused', refused);
  source.fates = fates;
  return () => {
    source.publisher.off('delivered', delivered);
    source.publisher.off('dropped', dropped);
    source.publisher.off('refused', refused);
    if (source.fates === fates) source.fates = undefined;
  };
}
