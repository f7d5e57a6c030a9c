/**
 * Sending and counting, with no knowledge of Node-RED: a `Pipe` sends a
 * payload into the flow and reports payloads coming out of it. Every payload
 * carries a header (sequence number, send time, phase) over the fixed random
 * bytes, so the sink knows which message it got and how long it took.
 */
import type { Delivery, LatencyStats } from './types.js';

export interface Pipe {
  send(payload: Buffer): void;
  /** Replaces the handler of payloads arriving at the sink. */
  onReceive(handler: (payload: Buffer) => void): void;
}

/** Bytes 0–3 sequence number, 4–11 send time (process.hrtime.bigint), 12 phase. */
export const HEADER_BYTES = 13;

/** Bytes in MB, one decimal, as the report shows memory. */
export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export function stamp(base: Buffer, size: number, seq: number, phase: number): Buffer {
  const payload = Buffer.allocUnsafe(size);
  base.copy(payload, 0, 0, size);
  payload.writeUInt32BE(seq, 0);
  payload.writeBigInt64BE(process.hrtime.bigint(), 4);
  payload[12] = phase;
  return payload;
}

const UNSEEN = 0;
const SEEN = 1;
/** A later message arrived first: taken for lost, which frees its place in the window. */
const PRESUMED_LOST = 2;

/**
 * Counts one phase's messages at the sink: each sequence number once, duplicates
 * and strays apart. Messages travel in order over one connection, so a gap means
 * a loss (QoS 0); presuming it keeps the window from filling with messages that
 * will never come. A presumed message that arrives after all is counted received.
 */
export class DeliveryTracker {
  sent = 0;
  received = 0;
  presumedLost = 0;
  duplicates = 0;
  strays = 0;
  firstSend = 0n;
  lastReceive = 0n;
  private lowest = 0;
  private readonly state: Uint8Array;

  constructor(
    readonly capacity: number,
    readonly phase: number,
    private readonly histogram?: LatencyHistogram,
  ) {
    this.state = new Uint8Array(capacity);
    // Touch every page now, so the tracker's memory does not show as growth later.
    this.state.fill(UNSEEN);
  }

  get outstanding(): number {
    return this.sent - this.received - this.presumedLost;
  }

  /** The next payload to send. */
  next(base: Buffer, size: number): Buffer {
    if (this.sent === 0) this.firstSend = process.hrtime.bigint();
    return stamp(base, size, this.sent++, this.phase);
  }

  /** Counts a payload from the sink; true when it is a message of this phase not seen before. */
  accept(payload: Buffer): boolean {
    if (!Buffer.isBuffer(payload) || payload.length < HEADER_BYTES || payload[12] !== this.phase) {
      this.strays++;
      return false;
    }
    const seq = payload.readUInt32BE(0);
    if (seq >= this.sent) {
      this.strays++;
      return false;
    }
    const now = process.hrtime.bigint();
    const previous = this.state[seq];
    if (previous === SEEN) {
      this.duplicates++;
      return false;
    }
    this.state[seq] = SEEN;
    this.received++;
    this.lastReceive = now;
    this.histogram?.record(Number(now - payload.readBigInt64BE(4)) / 1e6);
    if (previous === PRESUMED_LOST) {
      this.presumedLost--;
      return true;
    }
    for (; this.lowest < seq; this.lowest++) {
      if (this.state[this.lowest] === UNSEEN) {
        this.state[this.lowest] = PRESUMED_LOST;
        this.presumedLost++;
      }
    }
    if (this.lowest === seq) this.lowest++;
    return true;
  }

  delivery(stalled: boolean): Delivery {
    const seconds = this.received > 0 ? Number(this.lastReceive - this.firstSend) / 1e9 : 0;
    return {
      sent: this.sent,
      received: this.received,
      lost: this.sent - this.received,
      duplicates: this.duplicates,
      stalled,
      seconds,
    };
  }
}

export interface WindowedOptions {
  messages: number;
  window: number;
  size: number;
  base: Buffer;
  phase: number;
  stallMs: number;
  /** Stop sending after this many seconds. */
  maxSeconds: number;
  /** Called with the tracker every 250 ms (memory sampling). */
  onTick?: () => void;
}

/**
 * Sends `messages` as fast as the flow takes them, with at most `window` sent
 * but not yet received: each arrival lets one more go.
 */
export function runWindowed(
  pipe: Pipe,
  options: WindowedOptions,
): Promise<{ delivery: Delivery; capped: boolean; tracker: DeliveryTracker }> {
  const { messages, window, size, base, stallMs } = options;
  const tracker = new DeliveryTracker(messages, options.phase);
  let limit = messages;
  let capped = false;
  let lastProgress = Date.now();
  const started = Date.now();
  return new Promise((resolve) => {
    let finished = false;
    const finish = (stalled: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      pipe.onReceive(() => {});
      resolve({ delivery: tracker.delivery(stalled), capped, tracker });
    };
    const pump = () => {
      while (tracker.sent < limit && tracker.outstanding < window) pipe.send(tracker.next(base, size));
      if (tracker.sent === limit && tracker.outstanding === 0) finish(false);
    };
    pipe.onReceive((payload) => {
      if (!tracker.accept(payload)) return;
      lastProgress = Date.now();
      pump();
    });
    const timer = setInterval(() => {
      options.onTick?.();
      const now = Date.now();
      if (!capped && now - started > options.maxSeconds * 1000 && tracker.sent < limit) {
        capped = true;
        limit = tracker.sent;
        lastProgress = now;
        pump();
      }
      if (tracker.outstanding > 0 && now - lastProgress > stallMs) finish(true);
    }, 250);
    pump();
  });
}

export interface PacedOptions {
  /** Messages per second. */
  rate: number;
  seconds: number;
  window: number;
  size: number;
  base: Buffer;
  phase: number;
  stallMs: number;
  histogram?: LatencyHistogram;
}

/**
 * Sends at a fixed rate for `seconds` (a 1 ms timer sends what is due), never
 * more than `window` outstanding: a message due while the window is full is
 * skipped, not sent late, so the schedule holds. Then waits for the rest.
 */
export function runPaced(
  pipe: Pipe,
  options: PacedOptions,
): Promise<{ delivery: Delivery; achievedRate: number; skipped: number; tracker: DeliveryTracker }> {
  const { rate, seconds, window, size, base, stallMs } = options;
  const total = Math.round(rate * seconds);
  const tracker = new DeliveryTracker(total, options.phase, options.histogram);
  let scheduled = 0;
  let skipped = 0;
  let lastProgress = Date.now();
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    let finished = false;
    let sending = true;
    const finish = (stalled: boolean) => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      pipe.onReceive(() => {});
      const sendSeconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
      resolve({
        delivery: tracker.delivery(stalled),
        achievedRate: sendSeconds > 0 ? tracker.sent / sendSeconds : 0,
        skipped,
        tracker,
      });
    };
    const tick = () => {
      const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate));
      while (scheduled < due) {
        scheduled++;
        if (tracker.outstanding < window) pipe.send(tracker.next(base, size));
        else skipped++;
      }
      if (scheduled < total) {
        setTimeout(tick, 1);
      } else {
        sending = false;
        lastProgress = Date.now();
        if (tracker.outstanding === 0) finish(false);
      }
    };
    pipe.onReceive((payload) => {
      if (!tracker.accept(payload)) return;
      lastProgress = Date.now();
      if (!sending && tracker.outstanding === 0) finish(false);
    });
    const watchdog = setInterval(() => {
      if (tracker.outstanding > 0 && Date.now() - lastProgress > stallMs) finish(true);
    }, 250);
    tick();
  });
}

/**
 * Latencies in milliseconds, in constant memory: 10 µs buckets up to 10 ms,
 * 1 ms buckets up to 10 s, and the exact maximum.
 */
export class LatencyHistogram {
  private readonly fine = new Uint32Array(1000);
  private readonly coarse = new Uint32Array(10_000);
  private overflow = 0;
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (ms < 10) this.fine[Math.max(0, Math.floor(ms * 100))]++;
    else if (ms < 10_000) this.coarse[Math.floor(ms)]++;
    else this.overflow++;
  }

  /** The upper bound of the bucket holding the p-th percentile (0–100). */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i];
      if (seen >= rank) return Math.min((i + 1) / 100, this.max);
    }
    for (let i = 10; i < this.coarse.length; i++) {
      seen += this.coarse[i];
      if (seen >= rank) return Math.min(i + 1, this.max);
    }
    return this.max;
  }

  stats(): LatencyStats {
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return {
      count: this.count,
      mean: round(this.count ? this.sum / this.count : 0),
      p50: round(this.percentile(50)),
      p90: round(this.percentile(90)),
      p99: round(this.percentile(99)),
      p999: round(this.percentile(99.9)),
      max: round(this.max),
    };
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Least-squares slope of y over x. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den ? num / den : 0;
}
