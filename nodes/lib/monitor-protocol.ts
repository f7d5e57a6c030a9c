/**
 * What the editor's "durable mqtt" sidebar and the runtime say to each other: the admin routes,
 * the comms topic, and the views they carry. Types and constants only, so the sidebar's browser
 * code and the runtime import the same file.
 *
 * The runtime samples nothing until an editor watches: while the tab is shown, the sidebar posts to
 * `WATCH` every `WATCH_RENEW_MS`; the runtime then publishes a `MonitorSnapshot` on `MONITOR_TOPIC`
 * every `SAMPLE_INTERVAL_MS` and stops `WATCH_LEASE_MS` after the last watch.
 */

/** The comms topic of the snapshots (the editor subscribes with `RED.comms.subscribe`). */
export const MONITOR_TOPIC = 'durable-mqtt/monitor';

export const SAMPLE_INTERVAL_MS = 1_000;
export const WATCH_RENEW_MS = 5_000;
export const WATCH_LEASE_MS = 15_000;
/** Rate samples a broker keeps for its chart: the last five minutes. */
export const RATE_HISTORY = 300;
/** Bytes of a retained payload shown at most (to users with the write permission only). */
export const PREVIEW_BYTES = 1_024;
/** Retained messages listed at most in one answer. */
export const RETAINED_LIST_LIMIT = 500;
/** Quarantined messages listed per in node in a snapshot, newest first. */
export const QUARANTINE_LIST_LIMIT = 50;

/**
 * Admin routes under Node-RED's `httpAdminRoot`. Views need the `durable-mqtt.read` permission,
 * actions `durable-mqtt.write`; every route is rate-limited (HTTP 429 with `Retry-After`).
 */
export const MONITOR_ROUTES = {
  /** POST, read: keep sampling for another `WATCH_LEASE_MS`. Answers 204. */
  watch: '/durable-mqtt/monitor/watch',
  /** GET, read: the `MonitorSnapshot` now, for the first paint. */
  snapshot: '/durable-mqtt/monitor',
  /** GET, read: `RetainedListing` of broker `:id`, `?topic=<filter>` (default `#`). Previews with write only. */
  retained: '/durable-mqtt/brokers/:id/retained',
  /**
   * DELETE, write: clears the retained message of `?topic=<exact topic>` on broker `:id` (in the store, no
   * PUBLISH to subscribers). Answers 204; 404 when the broker holds none on that topic.
   */
  deleteRetained: '/durable-mqtt/brokers/:id/retained',
  /**
   * POST, write: the outbox of out node `:id` sends what waits now (no backoff wait); a connection waiting
   * to reconnect tries now (one stopped by `msg.action` stays stopped). Answers 204.
   */
  retryOutbox: '/durable-mqtt/outboxes/:id/retry',
  /**
   * POST, write: empties the outbox of out node `:id` of what is not yet handed to the broker; messages in
   * flight or awaiting receipts finish their exchange. Answers `{ purged: number }`.
   */
  purgeOutbox: '/durable-mqtt/outboxes/:id/purge',
  /** POST, write, body `{ key }`: sends quarantined message `key` of in node `:id` to its flow again (204; 404: no such key). */
  releaseQuarantined: '/durable-mqtt/quarantines/:id/release',
  /** POST, write, body `{ key }`: forgets quarantined message `key` of in node `:id` (204; 404: no such key). */
  discardQuarantined: '/durable-mqtt/quarantines/:id/discard',
} as const;

export interface MonitorSnapshot {
  /** Milliseconds since the epoch when sampled. */
  at: number;
  brokers: BrokerView[];
  connections: ConnectionView[];
  outboxes: OutboxView[];
  dedupes: DedupeView[];
  quarantines: QuarantineView[];
}

export interface ListenerView {
  kind: 'tcp' | 'tls' | 'ws' | 'wss';
  port: number;
}

/** An embedded broker node. */
export interface BrokerView {
  id: string;
  name: string;
  listeners: ListenerView[];
  clients: ClientView[];
  /** Persistent sessions whose client is away, with the messages queued for it. */
  offlineSessions: { clientId: string; queued: number }[];
  retainedCount: number;
  /** PUBLISH packets per second in and out, oldest first, one per sample, at most `RATE_HISTORY`. */
  rates: { at: number; in: number; out: number }[];
}

export interface ClientView {
  clientId: string;
  user?: string;
  /** `host:port` of a network client; absent for the runtime's own in-process clients. */
  address?: string;
  protocolVersion: 3 | 4 | 5;
  /** Milliseconds since the epoch. */
  connectedSince: number;
  keepAlive: number;
  subscriptions: { filter: string; qos: number }[];
  /** Of a persistent session's queue: sent and not acknowledged, and waiting; 0 for a clean session. */
  inFlight: number;
  queued: number;
}

/** A broker config node's shared connection. */
export interface ConnectionView {
  id: string;
  name: string;
  state: 'idle' | 'stopped' | 'connecting' | 'connected' | 'disconnected' | 'closed';
  /** `mqtt://host:port`, `embedded:<broker name>`…: never credentials. */
  endpoint: string;
  /** Milliseconds since the epoch when it entered `state`. */
  since: number;
  /** Attempts to connect again after a failure or a loss, since the config node started. */
  reconnects: number;
  /** The last failure's text, kept once connected again. */
  lastError?: string;
  /** Each filter held at the broker, with the ids of the nodes that use it (those that name themselves). */
  subscriptions: { filter: string; qos: number; nodes: string[] }[];
}

/** An out node with persistence `queued` or `acknowledged`. */
export interface OutboxView {
  id: string;
  name: string;
  /** The broker config node it publishes through. */
  connectionId: string;
  persistence: 'queued' | 'acknowledged';
  messages: number;
  bytes: number;
  inFlight: number;
  /** Seconds; 0 when empty. */
  oldestAgeSeconds: number;
  /** Messages delivered per second over the last sample. */
  deliveredPerSecond: number;
  /** Counted while an editor watches (since the node started when the metrics are on). */
  delivered: number;
  dropped: number;
  refused: number;
}

export interface DedupeView {
  id: string;
  name: string;
  keys: number;
  passed: number;
  duplicates: number;
}

/** An in node with `ack: complete` and its quarantine. */
export interface QuarantineView {
  id: string;
  name: string;
  /** Messages quarantined and held now. */
  count: number;
  /** The newest `QUARANTINE_LIST_LIMIT`. */
  messages: QuarantinedMessageView[];
}

export interface QuarantinedMessageView {
  key: string;
  topic?: string;
  attempts: number;
  firstSeen: number;
  quarantinedAt: number;
  lastError?: string;
}

export interface RetainedListing {
  messages: RetainedMessageView[];
  /** More matched than `RETAINED_LIST_LIMIT`. */
  truncated: boolean;
}

export interface RetainedMessageView {
  topic: string;
  qos: number;
  bytes: number;
  /** Only for users with the write permission; at most `PREVIEW_BYTES` of the payload. */
  preview?: { kind: 'text' | 'json' | 'hex'; text: string; truncated: boolean };
}
