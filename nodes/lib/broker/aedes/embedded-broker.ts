/**
 * The adapter between the embedded broker and Aedes. Everything that knows Aedes sits in this
 * folder; the broker's policy (access rules, limits, the packet gate, the listeners) is in the
 * folder above and does not. Aedes is pinned to 2.0.0-beta.1, the first release that speaks
 * MQTT 5: a later release is a change to package.json and, at most, to this folder.
 */
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import type { Aedes, AedesOptions } from 'aedes' with { 'resolution-mode': 'import' };
import { createDuplexPair } from '../../duplex-pair.js';
import { ClassicLevel } from 'classic-level';
import { RedisBackend, type RedisBackendOptions } from './redis-backend.js';
import type { ClusterSessions } from './cluster-sessions.js';
import { queuePersistence, startOrderedBrokerId } from './queue-persistence.js';
import { BrokerCounting, type StatisticsOptions } from './broker-statistics.js';
import type { BrokerStatistics } from '../traffic.js';
import { patchDeliveries } from './client-patches.js';
import { forgetIncomingOfCleanSessions } from './persistence-patches.js';
import {
  brokerMapsWithoutPrototype,
  clientMapsWithoutPrototype,
  type BrokerKeyMaps,
} from './prototype-keys.js';
import type { AedesClient, AedesInternals } from './types.js';
import { accessHooks, refusalOf } from './access-hooks.js';
import { SharedSubscriptions } from './shared-subscriptions.js';
import { SharedAnnouncements } from './shared-announcements.js';
import { MQ_CONCURRENCY } from './message-bus.js';
import { QuotaDisconnect } from './quota-disconnect.js';
import { shutDown } from './server-shutdown.js';
import { OutgoingPackets, shapeOutgoing } from './outgoing-packets.js';
import { applyConnectTerms, limitKeepAlive, takeAsSent } from './connect-terms.js';
import { AccessControl, type AccessConfig } from '../access-control.js';
import type { Identity } from '../acl.js';
import { GatedConnection, refuseConnection } from '../gated-connection.js';
import { MAX_QOS2_AWAITING_RELEASE, TOPIC_ALIAS_MAXIMUM, type BrokerLimits } from '../limits.js';
import {
  attachWebSocket,
  listenSecureWebSocket,
  listenTcp,
  listenTls,
  type Admit,
  type ClientOrigin,
  type Listener,
} from '../listeners.js';
import { embeddedBrokerMissing, type InProcessBroker, type SessionCredentials } from '../registry.js';
import { CoreSession } from '../core-session.js';
import { brokerCoreOf } from './broker-core.js';
import { BrokerInspection } from './broker-inspection.js';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 means no TCP listener (in-process clients only). */
  port: number;
  /** Address the TCP, TLS and secure WebSocket listeners bind to. */
  bind: string;
  /** MQTT over WebSocket on this path of `httpServer`, or undefined for none. */
  wsPath?: string;
  httpServer?: HttpServer;
  /** Users, their password hashes and topic rules, and whether anonymous clients are let in; awaited by start(). */
  access: AccessConfig | PromiseLike<AccessConfig>;
  /**
   * A directory for retained messages, persistent sessions (subscriptions and
   * offline queues) and in-flight QoS 2 state, so they survive a restart; in memory when unset.
   */
  persistenceDirectory?: string;
  /** Redis shared with other embedded brokers, which then form one broker; takes over from `persistenceDirectory`. */
  redis?: RedisBackendOptions;
  /** The most QoS 1/2 messages queued for one disconnected client with a persistent session; 0: no bound. */
  maxOfflineMessages: number;
  /** What network clients may take; the broker's own in-process clients are not limited. */
  limits: BrokerLimits;
  /** MQTT over TLS on `port`, and over secure WebSocket on `wssPort`; 0 for either means none. */
  tls?: { options: TlsOptions; port: number; wssPort: number };
  /** Counts traffic for the `$SYS` topics and the metrics; undefined: nothing counted. */
  statistics?: StatisticsOptions;
}

type ListenerKind = 'tcp' | 'tls' | 'wss';

/** The default of `maxOfflineMessages`. */
export const DEFAULT_MAX_OFFLINE_MESSAGES = 10_000;

export interface EmbeddedBrokerEvents {
  clients: [count: number];
  'client-error': [clientId: string, error: Error];
  /** The oldest queued message of a disconnected client was dropped to respect `maxOfflineMessages`. */
  'offline-dropped': [clientId: string, topic: string];
  /** Redis could not be reached (`reason`), or can again (undefined); only with the `redis` option. */
  'redis-state': [unreachable: string | undefined];
  /** A publication the client may not make was acknowledged and dropped. */
  'publish-refused': [identity: Identity, topic: string];
  /** A subscription the client may not make was refused (SUBACK 0x80). */
  'subscribe-refused': [identity: Identity, filter: string];
  /** A connection was closed for breaking the protocol or a limit; `client` is its address. */
  violation: [client: string, reason: string];
  /** An anonymous client from another machine was refused (see AccessConfig.anonymousFromNetwork). */
  'anonymous-refused': [client: string];
  /** A message was not sent to a client whose Maximum Packet Size it exceeds, and taken as sent. */
  'too-large-discarded': [clientId: string, topic: string, size: number, maximum: number];
  /** A connected MQTT 5 client was sent DISCONNECT 0x97: over `maxOfflineMessages` queued, and none acknowledged. */
  'quota-disconnected': [clientId: string, maxMessages: number];
}

/**
 * An Aedes broker with optional TCP, TLS and secure WebSocket listeners, an optional WebSocket
 * endpoint on Node-RED's own server, and in-process connections (MQTT streams and core sessions).
 */
export class EmbeddedBroker extends EventEmitter<EmbeddedBrokerEvents> implements InProcessBroker {
  private aedes: Aedes | undefined;
  private shared: SharedSubscriptions | undefined;
  private announcements: SharedAnnouncements | undefined;
  private db: ClassicLevel | undefined;
  private redis: RedisBackend | undefined;
  private clusterSessions: ClusterSessions | undefined;
  private readonly servers = new Map<ListenerKind, Listener>();
  private detachWebSocket: (() => void) | undefined;
  private readonly connections = new Set<GatedConnection>();
  /** Open network connections, checked against limits.maxConnections. */
  private networkConnections = 0;
  private access: AccessControl | undefined;
  private readonly connectedClientIds = new Set<string>();
  /** This Node-RED's broker configs connected through the broker's core (clean sessions). */
  private readonly coreSessions = new Set<CoreSession>();
  /** Tells DISCONNECT 0x97 to connected MQTT 5 clients over the offline queue bound (quota-disconnect.ts). */
  private quota: QuotaDisconnect | undefined;
  private counting: BrokerCounting | undefined;
  /** What the editor's monitor reads: clients, offline sessions, retained messages; undefined until started. */
  private inspection: BrokerInspection | undefined;
  /** The address the TCP listener is bound to, once listening. */
  get listeningAddress(): net.AddressInfo | undefined {
    return this.servers.get('tcp')?.address;
  }

  /** The addresses of the TLS and secure WebSocket listeners, once listening. */
  get secureAddresses(): { tls?: net.AddressInfo; wss?: net.AddressInfo } {
    return { tls: this.servers.get('tls')?.address, wss: this.servers.get('wss')?.address };
  }

  constructor(private readonly options: EmbeddedBrokerOptions) {
    super();
  }

  get maxOfflineMessages(): number {
    return this.options.maxOfflineMessages;
  }

  get clientCount(): number {
    return (this.aedes?.connectedClients ?? 0) + this.coreSessions.size;
  }

  /**
   * Starts the broker and its listeners. In-process connections work whatever
   * happens to the listeners; a listener that fails does not stop the others,
   * and the first failure is thrown once all have been tried.
   */
  async start(): Promise<void> {
    const { Aedes } = await import('aedes');
    const access = new AccessControl(await this.options.access);
    this.access = access;
    const brokerId = startOrderedBrokerId();
    const aedesOptions: AedesOptions = {
      id: brokerId,
      connectTimeout: this.options.limits.connectTimeoutMs,
      maxTopicLevels: this.options.limits.maxTopicLevels,
      concurrency: MQ_CONCURRENCY,
      // Told to MQTT 5 clients in the CONNACK; the packet gate holds network clients to it for QoS 2.
      receiveMaximum: MAX_QOS2_AWAITING_RELEASE,
      // Told to MQTT 5 clients; the packet gate reads the aliases too, to judge a PUBLISH by its topic.
      topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
      preConnect: (client, packet, callback) => {
        applyConnectTerms(client as AedesClient, packet);
        // In a cluster, a session past its expiry is ended before Aedes reads it.
        if (this.clusterSessions) this.clusterSessions.preConnect(client, packet, callback);
        else callback(null, true);
      },
      ...accessHooks(access, (identity, filter) => this.emit('subscribe-refused', identity, filter)),
    };
    if (this.options.redis) {
      const redis = new RedisBackend(this.options.redis);
      this.redis = redis;
      redis.on('unreachable', (reason) => this.emit('redis-state', reason));
      redis.on('reachable', () => this.emit('redis-state', undefined));
      aedesOptions.mq = redis.mq;
      // With Redis away this waits for it, as the persistence would.
      await redis.ready();
    } else if (this.options.persistenceDirectory) {
      // LevelDB through classic-level, the engine of the outbox too: prebuilt, nothing to compile.
      const db = new ClassicLevel(this.options.persistenceDirectory);
      await db.open();
      this.db = db;
    }
    const { persistence, clusterSessions } = await queuePersistence({
      redis: this.redis,
      db: this.db,
      brokerId,
      maxOfflineMessages: this.options.maxOfflineMessages,
      isConnected: (clientId) => this.connectedClientIds.has(clientId),
      onDrop: (clientId, packet) => this.emit('offline-dropped', clientId, packet.topic ?? ''),
      quota: () => this.quota,
      onError: (error) => this.emit('client-error', '', error),
    });
    this.clusterSessions = clusterSessions;
    aedesOptions.persistence = persistence;
    // With Redis away this waits for it (the persistence reads the stored sessions first).
    const aedes = await Aedes.createBroker(aedesOptions);
    brokerMapsWithoutPrototype(aedes as unknown as BrokerKeyMaps);
    this.quota = new QuotaDisconnect(aedes, (clientId, max) =>
      this.emit('quota-disconnected', clientId, max),
    );
    forgetIncomingOfCleanSessions(aedes, persistence, (error) => this.emit('client-error', '', error));
    this.clusterSessions?.attach(aedes);
    // With Redis the brokers agree on which of them gives each message to a group.
    this.announcements = this.redis ? new SharedAnnouncements(aedes) : undefined;
    const shared = new SharedSubscriptions(aedes, this.announcements);
    this.shared = shared;
    this.announcements?.start(() => shared.sharesHeld());
    this.aedes = aedes;
    if (this.options.statistics) this.counting = new BrokerCounting(aedes, this.options.statistics, this);
    const stores = { db: this.db, redis: this.redis?.storageConnection, cluster: clusterSessions };
    this.inspection = new BrokerInspection(aedes, persistence, stores, this.counting?.traffic);
    const countChanged = () => this.emit('clients', this.clientCount);
    // 'client' and 'clientDisconnect' come as Aedes registers and unregisters a client id.
    aedes.on('client', (client) => this.connectedClientIds.add(client.id));
    aedes.on('clientDisconnect', (client) => this.connectedClientIds.delete(client.id));
    aedes.on('clientReady', countChanged);
    aedes.on('clientDisconnect', countChanged);
    aedes.on('clientError', (client, error) => this.emit('client-error', client?.id ?? '', error));
    aedes.on('connackSent', (packet, client) => {
      // An MQTT 5 CONNACK has a reason code where a 3.1.1 one has a return code.
      const accepted = (packet.returnCode ?? packet.reasonCode) === 0;
      if (accepted && client.conn instanceof GatedConnection) client.conn.connectionAccepted();
    });
    await this.listen();
  }

  private async listen(): Promise<void> {
    const { port, bind, limits, tls, wsPath, httpServer } = this.options;
    const admit: Admit = (transport, origin, req) => this.admit(transport, origin, req);
    if (wsPath && httpServer) this.detachWebSocket = attachWebSocket(httpServer, wsPath, admit);
    const secure = (listenerPort: number) => ({
      port: listenerPort,
      bind,
      maxConnections: limits.maxConnections,
      handshakeTimeoutMs: limits.connectTimeoutMs,
      tls: tls?.options ?? {},
    });
    const wanted: [ListenerKind, number, () => Promise<Listener>][] = [
      ['tcp', port, () => listenTcp(port, bind, limits.maxConnections, admit)],
      ['tls', tls?.port ?? 0, () => listenTls(secure(tls?.port ?? 0), admit)],
      ['wss', tls?.wssPort ?? 0, () => listenSecureWebSocket(secure(tls?.wssPort ?? 0), admit)],
    ];
    let firstFailure: unknown;
    for (const [kind, listenerPort, start] of wanted) {
      if (listenerPort <= 0) continue;
      try {
        this.servers.set(kind, await start());
      } catch (error) {
        firstFailure ??= error;
      }
    }
    if (firstFailure) throw firstFailure;
  }

  connectInProcess(): Duplex {
    if (!this.aedes || this.aedes.closed) throw embeddedBrokerMissing();
    const [clientEnd, brokerEnd] = createDuplexPair();
    this.admit(brokerEnd, undefined);
    return clientEnd;
  }

  /**
   * A clean-session client in this process, connected to the broker's core
   * (core-session.ts): authenticated and held to the topic rules as any client.
   * Rejects with the CONNACK return code as `code` when the credentials are refused.
   */
  async openCoreSession(credentials: SessionCredentials): Promise<CoreSession> {
    const aedes = this.aedes;
    const access = this.access;
    if (!aedes || aedes.closed || !access) throw embeddedBrokerMissing();
    const password = credentials.password === undefined ? undefined : Buffer.from(credentials.password);
    const refusal = await refusalOf(access, credentials.username, password);
    if (refusal) {
      throw Object.assign(new Error(`Connection refused: ${refusal.message}`), { code: refusal.returnCode });
    }
    if (aedes.closed) throw embeddedBrokerMissing();
    const identity: Identity = { username: credentials.username, clientId: credentials.clientId };
    const session = new CoreSession(brokerCoreOf(aedes, this.shared, identity.clientId), identity, access);
    this.inspection?.coreSessionOpened(session);
    session.on('publish-refused', (who, topic) => this.emit('publish-refused', who, topic));
    session.on('subscribe-refused', (who, filter) => this.emit('subscribe-refused', who, filter));
    this.coreSessions.add(session);
    session.once('close', () => {
      this.coreSessions.delete(session);
      this.emit('clients', this.clientCount);
    });
    this.emit('clients', this.clientCount);
    return session;
  }

  /**
   * Hands a client's transport to Aedes through a gate; `address` names it in the log. Network
   * clients are held to the limits; the in-process ones are this Node-RED's own broker configs.
   */
  private admit(transport: Duplex, origin: ClientOrigin | undefined, req?: IncomingMessage): void {
    const network = origin !== undefined;
    const address = origin?.description ?? 'in-process';
    const aedes = this.aedes;
    if (!aedes || aedes.closed) return void transport.destroy();
    const { limits } = this.options;
    if (network && this.networkConnections >= limits.maxConnections) {
      this.emit('violation', address, `more than ${limits.maxConnections} connections (CONNACK 3)`);
      return refuseConnection(transport, 3, limits.connectTimeoutMs);
    }
    const access = this.access;
    const connection = new GatedConnection(transport, {
      maxPacketSize: network ? limits.maxPacketSize : Number.POSITIVE_INFINITY,
      access,
      conformance: network,
      coalesceWrites: network,
      refuseControlCharacters: network && limits.refuseControlCharacters,
      refusesAnonymous:
        origin && !origin.local && access ? (username) => access.refusesFromNetwork(username) : undefined,
    });
    this.connections.add(connection);
    if (network) this.networkConnections++;
    connection.once('close', () => {
      this.connections.delete(connection);
      if (network) this.networkConnections--;
    });
    connection.on('violation', (reason: string) => this.emit('violation', address, reason));
    connection.on('anonymous-refused', () => this.emit('anonymous-refused', address));
    connection.on('publish-refused', (identity: Identity, topic: string) =>
      this.emit('publish-refused', identity, topic),
    );
    // Each message once, at its capped QoS, none before the CONNACK (client-patches.ts); `$share/` in groups.
    const client = aedes.handle(connection, req) as AedesClient;
    clientMapsWithoutPrototype(client);
    this.shared?.applyTo(client);
    patchDeliveries(client);
    if (network) limitKeepAlive(connection, limits.maxKeepAlive);
    const outgoing = new OutgoingPackets({
      connackMaximumPacketSize: network ? limits.maxPacketSize : undefined,
      discarded: (packet, size, maximum) => {
        this.emit('too-large-discarded', client.id, String(packet.topic), size, maximum);
        const { persistence } = aedes as unknown as AedesInternals;
        takeAsSent(persistence, client, packet).catch((error: Error) =>
          this.emit('client-error', client.id, error),
        );
      },
    });
    shapeOutgoing(connection, outgoing);
    this.counting?.watch(client, connection, outgoing);
    this.inspection?.admit(client, connection, outgoing, origin?.description);
  }

  /** The monitor's view of the broker while it runs; undefined otherwise. */
  get inspector(): BrokerInspection | undefined {
    return this.aedes?.closed === false ? this.inspection : undefined;
  }

  /** The numbers of the `$SYS` topics and the metrics now; undefined when not counted or not running. */
  statistics(): Promise<BrokerStatistics> | undefined {
    return this.aedes?.closed === false ? this.counting?.read() : undefined;
  }

  /** Closes listeners, every connection and the broker, so the ports are free when this resolves. */
  async close(): Promise<void> {
    for (const session of this.coreSessions) session.close();
    this.announcements?.close();
    this.counting?.close();
    // Aedes first: it tells MQTT 5 clients DISCONNECT 0x8B (server-shutdown.ts).
    const shutdown = shutDown(this.aedes);
    await shutdown.told;
    this.detachWebSocket?.();
    this.detachWebSocket = undefined;
    const listenersClosed = [...this.servers.values()].map((listener) => listener.close());
    this.servers.clear();
    for (const connection of this.connections) connection.destroy();
    await Promise.all([...listenersClosed, shutdown.closed]);
    this.clusterSessions?.close();
    await this.db?.close();
    this.db = undefined;
    await this.redis?.close();
  }

  /** A start still waiting for Redis gives up (start() rejects); nothing otherwise. */
  abandonStart(): void {
    if (!this.aedes) void this.redis?.close();
  }
}
