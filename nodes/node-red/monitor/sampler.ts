/**
 * The monitor's sampling, on a lease: nothing is sampled and no timer runs until an editor
 * watches; then a snapshot goes out every SAMPLE_INTERVAL_MS until WATCH_LEASE_MS after the last
 * watch. The counters behind the rates (a broker's PUBLISH packets, an outbox's deliveries) are
 * attached when watching starts and taken off when the lease ends, unless the broker's `$SYS`
 * topics or the metrics keep them anyway: with no editor watching, no message meets any of it.
 */
import {
  RATE_HISTORY,
  SAMPLE_INTERVAL_MS,
  WATCH_LEASE_MS,
  type BrokerView,
  type MonitorSnapshot,
} from '../../lib/monitor-protocol.js';
import type { TrafficCounters } from '../../lib/broker/traffic.js';
import type { BrokerInspection } from '../../lib/broker/aedes/broker-inspection.js';
import {
  brokers,
  connections,
  countFates,
  dedupes,
  outboxOpened,
  outboxes,
  quarantines,
  type OutboxSource,
} from './registry.js';
import { brokerView, connectionView, dedupeView, outboxView, quarantineView } from './views.js';

/** A broker watched: its counters, their last reading, and the rates so far. */
interface WatchedBroker {
  inspector: BrokerInspection;
  counters: TrafficCounters;
  stop: () => void;
  last: { at: number; in: number; out: number };
  rates: BrokerView['rates'];
}

/** An outbox watched: its delivered count at the last sample, and the rate since. */
interface WatchedOutbox {
  source: OutboxSource;
  stop: () => void;
  last: { at: number; delivered: number };
  perSecond: number;
}

export class MonitorSampler {
  private leaseEnds = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly watchedBrokers = new Map<string, WatchedBroker>();
  private readonly watchedOutboxes = new Map<string, WatchedOutbox>();

  /** Watches an outbox that opens while sampling, before its first message. */
  private readonly onOutboxOpened = (source: OutboxSource) => this.watchOutbox(source, Date.now());

  constructor(private readonly publish: (snapshot: MonitorSnapshot) => void) {}

  get watching(): boolean {
    return this.timer !== undefined;
  }

  /** An editor watches: sampling goes on for another WATCH_LEASE_MS, starting now if it was off. */
  watch(): void {
    this.leaseEnds = Date.now() + WATCH_LEASE_MS;
    if (this.timer) return;
    outboxOpened.add(this.onOutboxOpened);
    this.sample();
    this.schedule();
  }

  /** Stops sampling and takes every counter off at once (Node-RED stops, or the lease ended). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    outboxOpened.delete(this.onOutboxOpened);
    for (const watched of this.watchedBrokers.values()) watched.stop();
    for (const watched of this.watchedOutboxes.values()) watched.stop();
    this.watchedBrokers.clear();
    this.watchedOutboxes.clear();
  }

  /** The snapshot now, with the rates sampled so far (none when nobody watches). */
  async snapshot(): Promise<MonitorSnapshot> {
    const at = Date.now();
    const brokerViews = await Promise.all(
      [...brokers.values()].map((source) =>
        brokerView(source, this.watchedBrokers.get(source.id)?.rates ?? []),
      ),
    );
    return {
      at,
      brokers: brokerViews,
      connections: [...connections.values()].map(connectionView),
      outboxes: [...outboxes.values()].map((source) =>
        outboxView(source, this.watchedOutboxes.get(source.id)?.perSecond ?? 0),
      ),
      dedupes: [...dedupes.values()].map(dedupeView),
      quarantines: [...quarantines.values()].map(quarantineView),
    };
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      if (Date.now() >= this.leaseEnds) return this.stop();
      this.sample();
      this.schedule();
    }, SAMPLE_INTERVAL_MS);
    // Sampling never keeps Node-RED running.
    this.timer.unref();
  }

  /** Reads the counters, then publishes the snapshot; a snapshot that fails is skipped, the next one comes. */
  private sample(): void {
    const now = Date.now();
    this.sampleBrokers(now);
    this.sampleOutboxes(now);
    this.snapshot()
      .then((snapshot) => {
        if (this.timer) this.publish(snapshot);
      })
      .catch(() => undefined);
  }

  private sampleBrokers(now: number): void {
    for (const [id, watched] of this.watchedBrokers) {
      if (brokers.get(id)?.broker.inspector === watched.inspector) continue;
      watched.stop();
      this.watchedBrokers.delete(id);
    }
    for (const source of brokers.values()) {
      const inspector = source.broker.inspector;
      if (!inspector) continue;
      const watched = this.watchedBrokers.get(source.id);
      if (!watched) {
        const { counters, stop } = inspector.countTraffic();
        const last = { at: now, in: counters.publishReceived, out: counters.publishSent };
        this.watchedBrokers.set(source.id, { inspector, counters, stop, last, rates: [] });
        continue;
      }
      const { counters, last, rates } = watched;
      const seconds = Math.max(0.001, (now - last.at) / 1000);
      rates.push({
        at: now,
        in: (counters.publishReceived - last.in) / seconds,
        out: (counters.publishSent - last.out) / seconds,
      });
      if (rates.length > RATE_HISTORY) rates.shift();
      watched.last = { at: now, in: counters.publishReceived, out: counters.publishSent };
    }
  }

  private watchOutbox(source: OutboxSource, now: number): void {
    this.watchedOutboxes.get(source.id)?.stop();
    const stop = countFates(source);
    const last = { at: now, delivered: source.fates?.delivered ?? 0 };
    this.watchedOutboxes.set(source.id, { source, stop, last, perSecond: 0 });
  }

  private sampleOutboxes(now: number): void {
    for (const [id, watched] of this.watchedOutboxes) {
      if (outboxes.get(id) === watched.source) continue;
      watched.stop();
      this.watchedOutboxes.delete(id);
    }
    for (const source of outboxes.values()) {
      const watched = this.watchedOutboxes.get(source.id);
      if (!watched) {
        this.watchOutbox(source, now);
        continue;
      }
      const delivered = source.fates?.delivered ?? 0;
      const seconds = Math.max(0.001, (now - watched.last.at) / 1000);
      watched.perSecond = (delivered - watched.last.delivered) / seconds;
      watched.last = { at: now, delivered };
    }
  }
}
