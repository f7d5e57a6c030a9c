/**
 * The embedded brokers on one Redis telling each other which shared subscriptions they have members
 * of (../shared-cluster.ts), over the message bus they share, as Aedes' own heartbeats go: on a `$SYS/`
 * topic, at QoS 0. Each broker announces at every change and every ANNOUNCE_EVERY_MS, and answers a
 * broker it hears of for the first time at once.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import { ClusterShares, type BrokerShares } from '../shared-cluster.js';
import type { SharedClusterLink } from './shared-subscriptions.js';

const ANNOUNCE_EVERY_MS = 2000;
/** A broker not heard of for this long has stopped. */
const ANNOUNCEMENT_TTL_MS = 3 * ANNOUNCE_EVERY_MS;
const TOPIC_END = '/shared-subscriptions';

export class SharedAnnouncements implements SharedClusterLink {
  private readonly view: ClusterShares;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private shares: () => BrokerShares = () => ({ connected: [], persistent: [] });

  constructor(private readonly aedes: Aedes) {
    this.view = new ClusterShares(aedes.id, ANNOUNCEMENT_TTL_MS);
  }

  /** Starts announcing what `shares` says, and listening to the other brokers. */
  start(shares: () => BrokerShares): void {
    this.shares = shares;
    type Listener = Parameters<Aedes['subscribe']>[1];
    const heard: Listener = (packet, done) => {
      const brokerId = packet.topic.slice('$SYS/'.length, -TOPIC_END.length);
      try {
        const shares = JSON.parse(Buffer.from(packet.payload).toString('utf8')) as BrokerShares;
        if (this.view.heard(brokerId, shares)) this.changed();
      } catch {
        // Not one of ours: a broker of another version, say. It is left out of the view.
      }
      done();
    };
    this.aedes.subscribe(`$SYS/+${TOPIC_END}`, heard, () => undefined);
    this.timer = setInterval(() => this.announce(), ANNOUNCE_EVERY_MS);
    this.timer.unref();
    this.changed();
  }

  owns(key: string, local: { connected: boolean; persistent: boolean }, messageKey: string): boolean {
    return this.view.owns(key, local, messageKey);
  }

  /** Something this broker holds changed: announced once the changes of this turn are made. */
  changed(): void {
    if (this.pending || !this.timer) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.announce();
    });
  }

  /** Says this broker holds nothing any more, and stops. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.announce({ connected: [], persistent: [] });
  }

  private announce(shares = this.shares()): void {
    if (this.aedes.closed) return;
    const topic = `$SYS/${this.aedes.id}${TOPIC_END}`;
    const payload = Buffer.from(JSON.stringify(shares));
    this.aedes.publish(
      { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false },
      () => undefined,
    );
  }
}
