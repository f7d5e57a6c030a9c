/** What the parent process (bench/run.ts) and the workers (bench/worker.ts) exchange. */
import type { ScaleJob, ScaleReferenceJob, ScaleReferenceResult, ScaleResult } from './scale-types.js';

/**
 * The three ways a flow reaches the embedded broker node, and `floor`: Node-RED
 * alone, the same harness with a junction in place of the MQTT nodes and no
 * broker, the ceiling of any MQTT node pair in this flow shape.
 */
export type Variant = 'embedded' | 'tcp' | 'core' | 'floor';
export const VARIANTS: readonly Variant[] = ['embedded', 'tcp', 'core', 'floor'];
/** The variants with MQTT in them: those a QoS applies to, for latency and the soak. */
export const MQTT_VARIANTS: readonly Variant[] = ['embedded', 'tcp', 'core'];
export const VARIANT_LABELS: Record<Variant, string> = {
  embedded: 'ours embedded',
  tcp: 'ours tcp',
  core: 'core',
  floor: 'Node-RED alone',
};

export type QoS = 0 | 1 | 2;

/** The out node's `persistence` setting: none, or an outbox on disk (LevelDB) in front of the connection. */
export type Persistence = 'none' | 'queued' | 'acknowledged';
export const PERSISTENCE_MODES: readonly Persistence[] = ['none', 'queued', 'acknowledged'];

/** What our out node with persistence 'acknowledged' waits for before a message leaves its outbox. */
export type Until = 'broker' | 'subscriber';
export const UNTIL_MODES: readonly Until[] = ['broker', 'subscriber'];

/**
 * The broker the MQTT nodes go through: this package's embedded broker node in the same flow
 * (the default), or a Mosquitto the worker starts on loopback (the `tcp` job), which leaves the
 * embedded broker node out of the flow.
 */
export type BrokerKind = 'embedded' | 'mosquitto';

/** The broker configs' MQTT version: 4 is 3.1.1 (a core session through the embedded broker), 5 speaks MQTT. */
export type ProtocolVersion = 4 | 5;

export interface JobBase {
  /** A name for logs and profiles, e.g. `throughput-qos1-64b-embedded`. */
  name: string;
  variant: Variant;
  qos: QoS;
  /** Payload size in bytes. */
  size: number;
  /** Random bytes, hex, fixed for the whole run; payloads are prefixes of it. */
  payloadHex: string;
  /** Most messages sent but not yet received, for every phase. */
  window: number;
  /** A phase with messages outstanding and nothing received for this long ends (stall or loss). */
  stallMs: number;
  /** Write a CPU profile of the measured phase into this directory. */
  profileDir?: string;
  /** MQTT version of the broker configs; 4 (3.1.1) when unset. */
  protocolVersion?: ProtocolVersion;
  /** The broker between the out and in nodes; the embedded broker node when unset. */
  broker?: BrokerKind;
  /**
   * The end-to-end flow (bench/flows.ts): our out node with persistence 'acknowledged' and this
   * `until`, the in node with `ack: complete` feeding a node that finishes at once, and the
   * sink on the out node's receipt output, so a message counts once its receipt is out.
   */
  until?: Until;
}

export interface ThroughputJob extends JobBase {
  kind: 'throughput';
  /** Our out node's persistence (ours only; 'none' when unset). */
  persistence?: Persistence;
  messages: number;
  warmupMessages: number;
  /** The measured phase stops sending after this long, whatever was sent. */
  maxSeconds: number;
}

export interface PacedJob extends JobBase {
  kind: 'latency' | 'soak';
  /** Our out node's persistence (ours only; 'none' when unset). */
  persistence?: Persistence;
  /** Messages per second. */
  rate: number;
  warmupSeconds: number;
  seconds: number;
  /** Soak: seconds between RSS samples. */
  sampleEvery: number;
}

/**
 * A large backlog while offline, in a spawned Node-RED process (bench/backlog.ts): an
 * out node with persistence 'queued' whose broker config points at a port where
 * nothing listens, fed `messages` messages by a function node of the flow.
 */
export interface BacklogJob extends JobBase {
  kind: 'backlog';
  messages: number;
  /** Most messages handed to the out node whose done() has not come yet. */
  outstanding: number;
  /** The out node's maxMessages and maxBytes. */
  maxMessages: number;
  maxBytes: number;
}

/** Messages with distinct keys straight into a dedupe node (no broker): its cost per message and per key. */
export interface DedupeJob extends JobBase {
  kind: 'dedupe';
  messages: number;
  maxEntries: number;
  persist: boolean;
}

/**
 * The embedded broker node in Node-RED serving two MQTT.js clients of another process
 * (bench/clients.ts) over TCP loopback: one publisher, one subscriber, this MQTT version.
 * Measured by the throughput method; the result is a throughput result.
 */
export interface ClientsJob extends JobBase {
  kind: 'clients';
  /** The embedded broker node (the default), or a Mosquitto the worker starts, to compare with. */
  broker?: 'embedded' | 'mosquitto';
  protocolVersion: ProtocolVersion;
  messages: number;
  warmupMessages: number;
  maxSeconds: number;
}

/**
 * The open sidebar's cost, in one Node-RED runtime: phases with the monitor sampling (as while the
 * editor's durable mqtt sidebar is open) and without, alternating, so that neither the process nor
 * the JIT differs between them.
 */
export interface MonitorJob extends JobBase {
  kind: 'monitor';
  /** Our out node's persistence ('none' when unset). */
  persistence?: Persistence;
  /** Paced at this many messages per second for `seconds`; at full speed, `messages` a phase, when unset. */
  rate?: number;
  seconds: number;
  messages: number;
  /** Each round is one phase closed and one open, the order turning from round to round. */
  rounds: number;
}

/** One phase of a monitor job: messages received per second, and the process's CPU time per message. */
export interface MonitorPhase {
  rate: number;
  cpuMicrosecondsPerMessage: number;
  delivery: Delivery;
}

export interface MonitorResult {
  kind: 'monitor';
  closed: MonitorPhase[];
  open: MonitorPhase[];
  problems: Problems;
}

export type Job =
  ThroughputJob | PacedJob | BacklogJob | DedupeJob | ClientsJob | ScaleJob | ScaleReferenceJob | MonitorJob;

/** Messages of one phase, counted at the sink. */
export interface Delivery {
  sent: number;
  received: number;
  /** sent − received. */
  lost: number;
  duplicates: number;
  /** The phase ended because nothing arrived for `stallMs` while messages were outstanding. */
  stalled: boolean;
  /** Seconds from the first send to the last receive. */
  seconds: number;
}

export interface Problems {
  /** Node-RED log entries at warn or error level during the measured phase (count, first few texts). */
  logErrors: number;
  logWarnings: number;
  logSamples: string[];
  /** Clients the embedded broker reported errors for (e.g. a dropped connection), with the reason. */
  brokerClientErrors: number;
  brokerSamples: string[];
  /** process 'warning' events (e.g. MaxListenersExceededWarning). */
  processWarnings: string[];
}

export interface Memory {
  /** RSS in MB once the flow is connected, before any message. */
  idleRssMB: number;
  /** RSS in MB right after the measured phase. */
  rssMB: number;
  /** Highest RSS in MB sampled (every 250 ms) during the measured phase. */
  peakRssMB: number;
  heapUsedMB: number;
}

export interface ThroughputResult {
  kind: 'throughput';
  delivery: Delivery;
  /** Messages received per second. */
  rate: number;
  /** The measured phase hit `maxSeconds` before sending every message. */
  capped: boolean;
  /**
   * External clients (the `clients` job): CPU time (user + system) per message received, of the
   * process holding the broker and of the clients' process. Unlike msg/s, it hardly moves when
   * others share the machine.
   */
  cpuPerMessage?: { brokerMicroseconds: number; clientsMicroseconds: number };
  memory: Memory;
  problems: Problems;
}

export interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LatencyResult {
  kind: 'latency';
  delivery: Delivery;
  /** Messages actually sent per second (below the asked rate when the window was full). */
  achievedRate: number;
  /** Messages due while the window was full, not sent. */
  skipped: number;
  /** Milliseconds from send to receive at the sink. */
  latency: LatencyStats;
  memory: Memory;
  problems: Problems;
}

export interface RssSample {
  /** Seconds since the end of the warm-up. */
  t: number;
  rssMB: number;
  heapUsedMB: number;
}

export interface SoakResult {
  kind: 'soak';
  delivery: Delivery;
  achievedRate: number;
  skipped: number;
  /** Whether gc() was forced before each sample. */
  gcForced: boolean;
  samples: RssSample[];
  latency: LatencyStats;
  memory: Memory;
  problems: Problems;
}

export interface BacklogSample {
  /** Messages completed (on disk) when the sample was taken. */
  queued: number;
  /** Seconds since the first message. */
  t: number;
  rssMB: number;
  heapUsedMB: number;
}

export interface BacklogResult {
  kind: 'backlog';
  /** Messages handed to the out node. */
  sent: number;
  /** done() without an error: the message is on disk. */
  queued: number;
  /** done(error): refused (outbox full) or a failed write. */
  failed: number;
  /** First few done(error) texts. */
  failures: string[];
  /** Whether the phase ended because no completion came for `stallMs`. */
  stalled: boolean;
  /** Seconds from the first message to the last completion. */
  seconds: number;
  /** Messages queued per second. */
  rate: number;
  /** What the out node's outbox reports holding at the end (its status count), when it could be read. */
  outboxCount?: number;
  /** Bytes of the outbox directory on disk at the end (LevelDB files). */
  outboxBytes: number;
  /** Whether the broker config stayed disconnected throughout (it must: nothing listens on its port). */
  stayedOffline: boolean;
  /** RSS (kernel) and heap (process.memoryUsage()) every 10 % of the way, no forced gc; polled every 100 ms. */
  samples: BacklogSample[];
  /**
   * Of the Node-RED process, RSS from the kernel (/proc/[pid]/status VmRSS), each time
   * settled by 8 s of forced gcs (when gc could be forced), once a second, after the
   * last work: `idleRssMB` before the first message, `rssMB` and `heapUsedMB` after the backlog.
   */
  memory: Memory & {
    rssBeforeGcMB: number;
    gcForced: boolean;
    /** RSS after gc as the process reports it (process.memoryUsage().rss): a check on the kernel's figure. */
    reportedRssMB: number;
    /** Whether the peak is the kernel's high-water mark (VmHWM, reset before the first message), not only samples. */
    peakFromKernel: boolean;
  };
  problems: Problems;
}

export interface DedupeResult {
  kind: 'dedupe';
  delivery: Delivery;
  /** Messages through the node (out of output 1) per second. */
  rate: number;
  /** Keys the node remembers at the end (maxEntries once more distinct keys than that went through). */
  keys: number;
  /** Heap used after forced gcs, before the first message and after the run, MB. */
  idleHeapMB: number;
  heapMB: number;
  /** (heap after − heap before) / keys. */
  bytesPerKey: number;
  memory: Memory;
  /** Whether gc() could be forced before the heap figures. */
  gcForced: boolean;
  problems: Problems;
}

export type JobResult =
  | ThroughputResult
  | LatencyResult
  | SoakResult
  | BacklogResult
  | DedupeResult
  | ScaleResult
  | ScaleReferenceResult
  | MonitorResult;

/** What the client process (bench/clients.ts) and the worker holding the broker exchange. */
export type ClientsMessage =
  /** Client process → worker: warmed up, the measured phase starts on `go` (the worker starts its profiler). */
  | { type: 'measuring' }
  /** Worker → client process. */
  | { type: 'go' }
  | { type: 'delivery'; delivery: Delivery; capped: boolean; cpuMicroseconds: number }
  | { type: 'failed'; error: string };

export type WorkerMessage = { type: 'result'; result: JobResult } | { type: 'failed'; error: string };
