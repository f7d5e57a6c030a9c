/**
 * What the editor's monitor reads of a running embedded broker: its clients, the persistent
 * sessions whose client is away with their queues, its retained messages; and the traffic
 * counters it lends every connection only while someone watches. Nothing here runs per message
 * unless those counters are lent: what is kept always is one entry per connection.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import type { ClassicLevel } from 'classic-level';
import type { Redis } from 'ioredis';
import type { ClientView } from '../../monitor-protocol.js';
import type { CoreSession } from '../core-session.js';
import type { GatedConnection } from '../gated-connection.js';
import { TrafficCounters } from '../traffic.js';
import { countClientTraffic } from './broker-statistics.js';
import type { ClusterSessions } from './cluster-sessions.js';
import type { OutgoingPackets } from './outgoing-packets.js';
import { publicFilter } from './shared-subscriptions.js';
import type { AedesClient, AedesPersistence } from './types.js';

/** A retained message as the store holds it. */
export interface RetainedMessage {
  topic: string;
  qos: number;
  payload: Buffer;
}

/** Where the broker keeps its sessions, to list those whose client is away. */
export interface SessionStores {
  db?: ClassicLevel;
  redis?: Redis;
  cluster?: ClusterSessions;
}

/** A network or in-process MQTT connection handed to Aedes. */
interface Admitted {
  client: AedesClient;
  connection: GatedConnection;
  outgoing: OutgoingPackets;
  /** `host:port` of a network client. */
  address: string | undefined;
  since: number;
  /** Set while lent counters count its traffic. */
  stopCounting?: () => void;
}

/** Key ranges of aedes-persistence-level and the set of aedes-persistence-redis that hold sessions. */
const LEVEL_SUBSCRIPTIONS = 'subscriptions:';
const REDIS_CLIENTS = 'clients';

export class BrokerInspection {
  private readonly admitted = new Set<Admitted>();
  private readonly coreSessions = new Map<CoreSession, number>();
  /** Client ids that connected with a persistent session since the start: the memory store cannot list them. */
  private readonly persistentIds = new Set<string>();
  /** Lent to every connection while someone watches a broker that counts nothing of its own. */
  private lent: { counters: TrafficCounters; watchers: number } | undefined;

  constructor(
    private readonly aedes: Aedes,
    private readonly persistence: AedesPersistence,
    private readonly stores: SessionStores,
    /** The broker's own counters ($SYS topics, metrics), when it keeps them. */
    private readonly counted: TrafficCounters | undefined,
  ) {
    // LevelDB and Redis list their sessions themselves.
    if (!stores.db && !stores.redis)
      aedes.on('client', (client) => {
        if (!(client as AedesClient).clean) this.persistentIds.add(client.id);
      });
  }

  /** A connection handed to Aedes; `origin` is its address and listener, for a network client. */
  admit(client: AedesClient, connection: GatedConnection, outgoing: OutgoingPackets, origin?: string): void {
    // "127.0.0.1:50000 (tls)": the listener's kind is told apart in the broker view.
    const entry: Admitted = {
      client,
      connection,
      outgoing,
      address: origin?.split(' ')[0],
      since: Date.now(),
    };
    this.admitted.add(entry);
    if (this.lent) entry.stopCounting = countClientTraffic(this.lent.counters, client, connection, outgoing);
    connection.once('close', () => {
      this.admitted.delete(entry);
      entry.stopCounting?.();
    });
  }

  coreSessionOpened(session: CoreSession): void {
    this.coreSessions.set(session, Date.now());
    session.once('close', () => this.coreSessions.delete(session));
  }

  /**
   * Counters of the PUBLISH packets in and out: the broker's own when it keeps them, else ones lent
   * to every connection until `stop` (the last watcher's) takes them back.
   */
  countTraffic(): { counters: TrafficCounters; stop: () => void } {
    if (this.counted) return { counters: this.counted, stop: () => undefined };
    if (!this.lent) {
      const counters = new TrafficCounters();
      this.lent = { counters, watchers: 0 };
      for (const entry of this.admitted)
        entry.stopCounting = countClientTraffic(counters, entry.client, entry.connection, entry.outgoing);
    }
    const lent = this.lent;
    lent.watchers++;
    let stopped = false;
    const stop = () => {
      if (stopped || --lent.watchers > 0 || this.lent !== lent) return;
      stopped = true;
      this.lent = undefined;
      for (const entry of this.admitted) entry.stopCounting?.();
      for (const entry of this.admitted) entry.stopCounting = undefined;
    };
    return { counters: lent.counters, stop };
  }

  /** The clients connected now: MQTT connections, then this Node-RED's broker configs on the broker's core. */
  async clients(): Promise<ClientView[]> {
    const views: Promise<ClientView>[] = [];
    for (const { client, connection, address, since } of this.admitted) {
      if (!client.connected || !client.id) continue;
      views.push(
        this.queueOf(client).then((queue) => {
          const view: ClientView = {
            clientId: client.id,
            protocolVersion: (client.version ?? 4) as ClientView['protocolVersion'],
            connectedSince: since,
            keepAlive: keepAliveSeconds(client),
            subscriptions: Object.entries(client.subscriptions).map(([filter, subscription]) => ({
              filter: publicFilter(filter),
              qos: (subscription as { qos?: number }).qos ?? 0,
            })),
            ...queue,
          };
          const user = connection.identity?.username;
          if (user !== undefined) view.user = user;
          if (address !== undefined) view.address = address;
          return view;
        }),
      );
    }
    const core = [...this.coreSessions].map(([session, since]): ClientView => ({
      clientId: session.identity.clientId,
      ...(session.identity.username !== undefined ? { user: session.identity.username } : {}),
      protocolVersion: 4,
      connectedSince: since,
      keepAlive: 0,
      subscriptions: session.subscriptions(),
      inFlight: 0,
      queued: 0,
    }));
    return [...(await Promise.all(views)), ...core];
  }

  /** What the store queues for a persistent session: sent and not acknowledged, and waiting to be sent. */
  private async queueOf(client: {
    id: string;
    clean?: boolean;
  }): Promise<{ inFlight: number; queued: number }> {
    const counts = { inFlight: 0, queued: 0 };
    // A clean session has no queue: what it is sent is written at once.
    if (client.clean) return counts;
    for await (const packet of this.persistence.outgoingStream({ id: client.id })) {
      if (packet.messageId) counts.inFlight++;
      else counts.queued++;
    }
    return counts;
  }

  /** The persistent sessions whose client is connected nowhere, with the messages queued for each. */
  async offlineSessions(): Promise<{ clientId: string; queued: number }[]> {
    const connected = new Set([...this.admitted].map(({ client }) => client.id));
    const sessions: { clientId: string; queued: number }[] = [];
    for (const clientId of await this.sessionIds()) {
      if (connected.has(clientId)) continue;
      if (await this.stores.cluster?.connectedElsewhere(clientId)) continue;
      // A session is its subscriptions: a client that has none left has no session to show.
      const subscriptions = (await this.persistence.subscriptionsByClient({ id: clientId })) as unknown[];
      if (subscriptions.length === 0) continue;
      const { inFlight, queued } = await this.queueOf({ id: clientId });
      sessions.push({ clientId, queued: inFlight + queued });
    }
    return sessions.sort((a, b) => a.clientId.localeCompare(b.clientId));
  }

  /** The client ids of the stored sessions: from Redis' set, the LevelDB's keys, or those seen since the start. */
  private async sessionIds(): Promise<Iterable<string>> {
    const { redis, db } = this.stores;
    if (redis) return redis.smembers(REDIS_CLIENTS);
    if (!db) return this.persistentIds;
    const ids = new Set<string>();
    // Keys are `subscriptions:<encoded client id>:<filter>` (aedes-persistence-level).
    for await (const key of db.keys({ gte: LEVEL_SUBSCRIPTIONS, lt: 'subscriptions;' })) {
      const encoded = key.slice(LEVEL_SUBSCRIPTIONS.length).split(':')[0];
      ids.add(decodeURIComponent(encoded));
    }
    return ids;
  }

  /** The retained messages matching `filter`, at most `limit` of them, and whether more matched. */
  async retained(
    filter: string,
    limit: number,
  ): Promise<{ messages: RetainedMessage[]; truncated: boolean }> {
    const messages: RetainedMessage[] = [];
    for await (const message of this.persistence.createRetainedStreamCombi([filter])) {
      if (messages.length === limit) return { messages, truncated: true };
      messages.push({ topic: message.topic, qos: message.qos, payload: message.payload });
    }
    return { messages, truncated: false };
  }

  /** How many retained messages the clients' topics have (the broker's own `$SYS` ones not counted). */
  async retainedCount(): Promise<number> {
    let count = 0;
    for await (const message of this.persistence.createRetainedStreamCombi(['#'])) if (message) count++;
    return count;
  }

  /**
   * Clears the retained message of `topic` in the store, as an empty retained PUBLISH would, without
   * sending that PUBLISH to the subscribers. False when there was none.
   */
  async deleteRetained(topic: string): Promise<boolean> {
    const found = await this.retained(topic, 1);
    if (found.messages.length === 0) return false;
    // Stamped as Aedes stamps what it stores (aedes-packet): the Redis store keys packets by them.
    const { id: brokerId, counter: brokerCounter } = this.aedes as unknown as { id: string; counter: number };
    const empty = {
      cmd: 'publish',
      topic,
      payload: Buffer.alloc(0),
      qos: 0,
      retain: true,
      dup: false,
    } as const;
    await this.persistence.storeRetained({ ...empty, brokerId, brokerCounter });
    return true;
  }

  get closed(): boolean {
    return this.aedes.closed;
  }
}

/** The keep-alive the client was granted, in seconds (Aedes keeps one and a half times it, in ms, plus 1). */
function keepAliveSeconds(client: AedesClient): number {
  const interval = client._keepaliveInterval ?? -1;
  return interval > 0 ? Math.round((interval - 1) / 1500) : 0;
}
