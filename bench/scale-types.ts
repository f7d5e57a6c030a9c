/** The `scale` job's job, result and messages (bench/jobs/scale.ts, bench/scale.ts, bench/scale-load.ts). */
import type { JobBase, Problems } from './types.js';

/** The broker under load: the embedded broker node in Node-RED, or a Mosquitto the job starts. */
export type ScaleBroker = 'embedded' | 'mosquitto';
export const SCALE_BROKERS: readonly ScaleBroker[] = ['embedded', 'mosquitto'];

/**
 * Many TCP clients of other processes (bench/scale-load.ts), each publishing one QoS 1 message every
 * `intervalSeconds` to its own topic, and one in node of this package in Node-RED subscribed to `+/#`.
 */
export interface ScaleJob extends JobBase {
  kind: 'scale';
  broker: ScaleBroker;
  clients: number;
  intervalSeconds: number;
  /** Length of the measured window, once every client is connected. */
  seconds: number;
}

export interface ScaleResult {
  kind: 'scale';
  broker: ScaleBroker;
  clients: number;
  /** Seconds to open every connection (both generators at once). */
  connectSeconds: number;
  /** The broker process's RSS (VmRSS), MB: with the subscriber alone, with every client connected, after the window. */
  rssIdleMB: number;
  rssConnectedMB: number;
  rssAfterMB: number;
  peakRssMB: number;
  /** (RSS connected − RSS idle) / clients, KB. */
  perClientKB: number;
  /** The broker process's CPU time (user + system) over the window, seconds, and as % of one core. */
  cpuSeconds: number;
  cpuPercent: number;
  windowSeconds: number;
  /** Publications sent by the clients in the window; PUBACKs they got back. */
  sent: number;
  acknowledged: number;
  /** Distinct messages (topic and sequence) the in node delivered; sent − arrived. */
  arrived: number;
  missing: number;
  duplicates: number;
  /** Most a publication left after it was due (the generators' own lag), ms. */
  lateMs: number;
  /** Client connections the broker closed during the window. */
  unexpectedCloses: number;
  errors: string[];
  problems: Problems;
}

/**
 * The scale job's memory references, servers in a process of their own (bench/scale-server.ts) that
 * the same clients connect to, for what any Node.js broker starts from: `floor`, a bare Node.js TCP
 * server that answers each CONNECT with a CONNACK and nothing else; `aedes`, the unpatched Aedes
 * package with its in-memory persistence.
 */
export type ScaleReference = 'floor' | 'aedes';
export const SCALE_REFERENCES: readonly ScaleReference[] = ['floor', 'aedes'];

/** The clients of the scale job connecting to a reference server; memory only, nothing published. */
export interface ScaleReferenceJob extends JobBase {
  kind: 'scale-reference';
  server: ScaleReference;
  clients: number;
  intervalSeconds: number;
}

export interface ScaleReferenceResult {
  kind: 'scale-reference';
  server: ScaleReference;
  /** Clients that got their CONNACK. */
  clients: number;
  connectSeconds: number;
  /** The server process's RSS (VmRSS), MB, after three forced gcs: before the clients, with all connected. */
  rssIdleMB: number;
  rssConnectedMB: number;
  /** (RSS connected − RSS idle) / clients, KB. */
  perClientKB: number;
}

/** Between the worker and a reference server process. */
export type ScaleServerMessage =
  /** Server → worker: it accepts connections on this loopback port. */
  | { type: 'listening'; port: number }
  /** Worker → server: collect garbage three times, half a second apart; server → worker: done. */
  | { type: 'settle' }
  | { type: 'settled' }
  | { type: 'failed'; error: string };

/** What a load generator process gets to start: its share of the clients. */
export interface ScaleLoadOrder {
  port: number;
  /** Index of its first client; its clients are first … first + count − 1. */
  first: number;
  count: number;
  totalClients: number;
  intervalSeconds: number;
}

export type ScaleLoadMessage =
  /** Generator → worker: every one of its clients has its CONNACK. */
  | { type: 'connected'; clients: number; seconds: number }
  /** Worker → generator: publish for this long. */
  | { type: 'go'; seconds: number }
  | {
      type: 'published';
      sent: number;
      acknowledged: number;
      lateMs: number;
      unexpectedCloses: number;
      errors: string[];
    }
  /** Worker → generator: disconnect every client and exit (before `go` too: a reference only connects). */
  | { type: 'stop' }
  | { type: 'failed'; error: string };

/** The topic of client `index`, under a first level of its own (the subscriber's filter is `+/#`). */
export const clientTopic = (index: number) => `c${index}/m`;
/** The payload of message `sequence` of client `index`: what the subscriber counts. */
export const messageKey = (index: number, sequence: number) => `${clientTopic(index)}#${sequence}`;
