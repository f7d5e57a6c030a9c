/**
 * An embedded broker as one of a cluster on Redis (cluster-state.ts holds what they share):
 * - the offline queue bound holds for every client of the cluster: a broker trims a queue only
 *   when its client is connected to no broker, and counts it in Redis, where every broker enqueues;
 * - an MQTT 5 session expires wherever its client comes back and whichever broker is running:
 *   Aedes times the expiry in the broker the client left, so a session resumed on another broker
 *   was still wiped by that timer, and one whose broker stopped first never expired;
 * - an MQTT 5 will with a delay is not published when its client came back on another broker
 *   within the delay: Aedes times it in the broker the client left, and cancels it only for a
 *   client that comes back there.
 */
import type { Aedes, AedesOptions, Client } from 'aedes' with { 'resolution-mode': 'import' };
import msgpack from 'msgpack-lite';
import { withOverrides } from './persistence-patches.js';
import type { ClusterState } from './cluster-state.js';
import type { QuotaDisconnect } from './quota-disconnect.js';
import type { AedesPersistence, DeliveredPacket } from './types.js';

/** The Session Expiry Interval meaning "never" (MQTT 5.0, 3.1.2.11.2): no deadline to record. */
const SESSION_NEVER_EXPIRES = 0xffffffff;

/** How often each broker counts the queues of its clients that acknowledge nothing (see watchQuotas). */
const QUOTA_CHECK_INTERVAL_MS = 1000;

/** How often each broker looks for sessions past their expiry (those whose broker stopped). */
const SWEEP_INTERVAL_MS = 1000;

/** The deadline is on Redis' clock; the broker's timer waits this much more to be past it. */
const CLOCK_MARGIN_MS = 50;

/**
 * `persistence` whose enqueues, once stored, trim the queues they grew to `maxMessages` (0: no
 * bound) in Redis, for clients connected to no broker; `onDrop` hears of each message removed.
 * A trim that fails drops nothing: the next message for that client tries again.
 */
export function boundClusterQueues<P extends AedesPersistence>(
  persistence: P,
  state: ClusterState,
  options: { maxMessages: number; onDrop(clientId: string, packet: DeliveredPacket): void },
): P {
  const { maxMessages, onDrop } = options;
  if (maxMessages <= 0) return persistence;
  const outgoingEnqueueCombi = async (subs: { clientId: string }[], packet: DeliveredPacket) => {
    await persistence.outgoingEnqueueCombi(subs, packet);
    const clientIds = [...new Set(subs.map((sub) => sub.clientId))];
    const dropped = await state.trimQueues(clientIds, maxMessages).catch(() => []);
    for (const { clientId, stored } of dropped) onDrop(clientId, msgpack.decode(stored) as DeliveredPacket);
  };
  return withOverrides(persistence, {
    outgoingEnqueue: (sub: { clientId: string }, packet: DeliveredPacket) =>
      outgoingEnqueueCombi([sub], packet),
    outgoingEnqueueCombi,
  });
}

/** The Session Expiry Interval (s) of `client`'s session when it is one to time: MQTT 5, neither 0 nor "never". */
function timedExpiry(client: Client): number | undefined {
  const interval = client.sessionExpiryInterval;
  return client.version === 5 && interval > 0 && interval < SESSION_NEVER_EXPIRES ? interval : undefined;
}

/** Aedes' hook of a disconnected session, which it calls once the client is unregistered. */
interface SessionScheduling {
  scheduleSessionExpiry(client: Client): void;
}

/** Where Aedes keeps a will: one per client and broker. */
interface WillPersistence {
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

/** Aedes' delayed wills: its timers by client id, what a timer calls, how it is cancelled; its bus. */
interface WillScheduling {
  id: string;
  delayedWills: Map<string, unknown>;
  publishWill(client: Client, will: { properties?: { willDelayInterval?: number } }): void;
  clearDelayedWill(clientId: string): void;
  mq: {
    on(topic: string, handler: (packet: { topic: string; payload: Buffer }, done: () => void) => void): void;
  };
}

/** The session expiry of an embedded broker in a cluster: see the file's comment. */
export class ClusterSessions {
  private sweeper: NodeJS.Timeout | undefined;
  private quotaWatch: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Aedes' connected clients by id, once attached. */
  private clients: Record<string, Client> = {};

  constructor(
    private readonly state: ClusterState,
    private readonly persistence: AedesPersistence,
    private readonly onError: (error: Error) => void,
  ) {}

  /**
   * Aedes' preConnect hook: a session past its expiry is ended before Aedes reads it, so the
   * client starts afresh even if no broker has swept it yet (its broker stopped, say).
   */
  readonly preConnect: NonNullable<AedesOptions['preConnect']> = (_client, packet, callback) => {
    const clientId = packet.clientId;
    if (!clientId) return callback(null, true);
    void this.state
      .claimExpired(clientId)
      .then((expired) => (expired ? this.endSession(clientId) : undefined))
      .then(
        () => callback(null, true),
        (error: unknown) => {
          // The session is left as it is: refusing the client for it would be worse.
          this.onError(error as Error);
          callback(null, true);
        },
      );
  };

  /**
   * Tells a client connected here over `maxMessages` queued, that acknowledges nothing, DISCONNECT 0x97
   * (quota-disconnect.ts). In a cluster the broker that takes a publication queues it for every
   * subscriber, so the one holding a stalled connection never sees its queue grow: it counts, in Redis,
   * the queues of its quiet clients, and of those only.
   */
  watchQuotas(
    quota: () => Pick<QuotaDisconnect, 'isQuiet' | 'overBound'> | undefined,
    maxMessages: number,
  ): void {
    if (maxMessages <= 0) return;
    this.quotaWatch = setInterval(() => {
      const watcher = quota();
      for (const clientId of Object.keys(this.clients)) {
        if (!watcher?.isQuiet(clientId)) continue;
        this.state.queueLength(clientId).then(
          (length) => (length > maxMessages ? watcher.overBound(clientId, maxMessages) : undefined),
          (error: Error) => this.onError(error),
        );
      }
    }, QUOTA_CHECK_INTERVAL_MS);
    this.quotaWatch.unref();
  }

  /** Joins `aedes` to the cluster's view of its clients and sessions. */
  attach(aedes: Aedes): void {
    this.clients = (aedes as unknown as { clients: Record<string, Client> }).clients;
    // Sent as Aedes registers the client, before it reads the session (see clientConnected).
    aedes.on('client', (client) => this.announce(client));
    aedes.on('clientDisconnect', (client) => this.report(this.state.clientDisconnected(client.id)));
    const scheduling = aedes as unknown as SessionScheduling;
    const scheduleInBroker = scheduling.scheduleSessionExpiry.bind(aedes);
    scheduling.scheduleSessionExpiry = (client) => {
      const interval = timedExpiry(client);
      // MQTT 3.1.1, a session that ends with its connection, one that never expires: Aedes' own way.
      if (interval === undefined) return scheduleInBroker(client);
      // Recorded even as the broker closes: another broker ends the session when it is due.
      const recorded = this.state.expireLater(client.id, interval);
      this.report(recorded.then((ms) => ms !== undefined && this.sweepAfter(ms)));
    };
    this.cancelWillsOfClientsBack(aedes as unknown as WillScheduling);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /**
   * A client registered on another broker (its `$SYS/<broker>/new/clients`, which crosses the cluster
   * as Aedes' heartbeats do) cancels the will this broker was delaying for it, as a client back here
   * does. A delayed will due while its client is connected to another broker (one that came back
   * as this broker timed the will, before the message arrived) is not published either.
   */
  private cancelWillsOfClientsBack(wills: WillScheduling): void {
    const forget = (clientId: string) => {
      wills.clearDelayedWill(clientId);
      // Else a broker would publish it once this one stopped (Aedes publishes the wills of stopped brokers).
      const persistence = this.persistence as AedesPersistence & WillPersistence;
      this.report(persistence.delWill({ id: clientId, brokerId: wills.id }));
    };
    wills.mq.on('$SYS/+/new/clients', (packet, done) => {
      const clientId = packet.payload.toString();
      if (packet.topic.split('/')[1] !== wills.id && wills.delayedWills.has(clientId)) forget(clientId);
      done();
    });
    const publishWill = wills.publishWill.bind(wills);
    wills.publishWill = (client, will) => {
      if (!will.properties?.willDelayInterval) return publishWill(client, will);
      void this.state.connectedElsewhere(client.id).then(
        (back) => (back ? forget(client.id) : publishWill(client, will)),
        (error: unknown) => {
          this.onError(error as Error);
          publishWill(client, will);
        },
      );
    };
  }

  /**
   * Tells the cluster again of every client connected here: the broker had counted as stopped
   * (ClusterState.start), and another broker may have taken its clients for disconnected.
   */
  announceClients(): void {
    for (const client of Object.values(this.clients)) this.announce(client);
  }

  private announce(client: Client): void {
    this.report(this.state.clientConnected(client.id, timedExpiry(client)));
  }

  private report(promise: Promise<unknown>): void {
    promise.catch(this.onError);
  }

  /** Whether the client is connected to another broker of the cluster. */
  connectedElsewhere(clientId: string): Promise<boolean> {
    return this.state.connectedElsewhere(clientId);
  }

  /** Stops sweeping; this broker's clients stop counting as connected. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    clearInterval(this.quotaWatch);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.state.stop();
  }

  /** A sweep at a deadline this broker recorded, so that the session ends on time while it runs. */
  private sweepAfter(ms: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.sweep();
    }, ms + CLOCK_MARGIN_MS);
    timer.unref();
    this.timers.add(timer);
  }

  private sweep(): void {
    if (this.closed) return;
    // With Redis away a sweep waits for it: one at a time.
    this.sweeping ??= (async () => {
      for (const clientId of await this.state.takeExpired()) await this.endSession(clientId);
    })()
      .catch(this.onError)
      .finally(() => (this.sweeping = undefined));
  }

  /**
   * Ends an expired session as Aedes does: its subscriptions go, and with the last of them the
   * persistence deletes the client's queue. A delayed will is Aedes' own: the broker the client
   * left publishes it, or, if that broker stopped, the broker that sees it gone.
   */
  private async endSession(clientId: string): Promise<void> {
    await this.persistence.cleanSubscriptions({ id: clientId });
  }
}
