/**
 * The only module that knows Aedes. Moving to another broker engine (Aedes 2
 * for MQTT 5) means rewriting this file and nothing else.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Aedes, AedesOptions } from 'aedes' with { 'resolution-mode': 'import' };
import { createDuplexPair } from './duplex-pair.js';
import { ClassicLevel } from 'classic-level';
// The async persistence Aedes 1.x requires (the package's main export is the callback one).
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js';
import AsyncMemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { boundOfflineQueues } from './broker/offline-queue-bound.js';
import { RedisBackend, type RedisBackendOptions } from './broker/redis-backend.js';
import type { InProcessBroker } from './embedded-registry.js';
import { dedupeDeliveriesExactly } from './aedes-delivery.js';
import { deliverAfterConnack, noteQueueResends } from './broker/deliver-after-connack.js';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 means no TCP listener (in-process clients only). */
  port: number;
  /** Address the TCP listener binds to. */
  bind: string;
  /** MQTT over WebSocket on this path of `httpServer`, or undefined for none. */
  wsPath?: string;
  httpServer?: HttpServer;
  /** When set, clients must present these credentials. */
  username?: string;
  password?: string;
  /**
   * A directory for retained messages, persistent sessions (subscriptions and
   * offline queues) and in-flight QoS 2 state, so they survive a restart; in memory when unset.
   */
  persistenceDirectory?: string;
  /** Redis shared with other embedded brokers, which then form one broker; takes over from `persistenceDirectory`. */
  redis?: RedisBackendOptions;
  /** The most QoS 1/2 messages queued for one disconnected client with a persistent session; 0: no bound. */
  maxOfflineMessages: number;
}

/** The default of `maxOfflineMessages`. */
export const DEFAULT_MAX_OFFLINE_MESSAGES = 10_000;

export interface EmbeddedBrokerEvents {
  clients: [count: number];
  'client-error': [clientId: string, error: Error];
  /** The oldest queued message of a disconnected client was dropped to respect `maxOfflineMessages`. */
  'offline-dropped': [clientId: string, topic: string];
  /** Redis could not be reached (`reason`), or can again (undefined); only with the `redis` option. */
  'redis-state': [unreachable: string | undefined];
}

/**
 * A broker id that sorts by start time. aedes-persistence-level orders each
 * outgoing queue by broker id, then by a counter that restarts at every start:
 * with Aedes' random id, messages queued before a restart could come after
 * those queued since, and the oldest dropped would be a random one.
 */
function startOrderedBrokerId(): string {
  return `${Date.now().toString(36).padStart(10, '0')}-${randomUUID()}`;
}

function sameSecret(given: Buffer | string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An Aedes broker with an optional TCP listener, an optional WebSocket endpoint and in-process connections. */
export class EmbeddedBroker extends EventEmitter<EmbeddedBrokerEvents> implements InProcessBroker {
  private aedes: Aedes | undefined;
  private db: ClassicLevel | undefined;
  private redis: RedisBackend | undefined;
  private tcpServer: net.Server | undefined;
  private readonly tcpSockets = new Set<net.Socket>();
  private wsServer: WebSocketServer | undefined;
  private upgradeListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  private readonly inProcessStreams = new Set<Duplex>();
  private readonly connectedClientIds = new Set<string>();
  /** The address the TCP listener is bound to, once listening. */
  listeningAddress: net.AddressInfo | undefined;

  constructor(private readonly options: EmbeddedBrokerOptions) {
    super();
  }

  get maxOfflineMessages(): number {
    return this.options.maxOfflineMessages;
  }

  get clientCount(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Starts the broker; in-process connections work even when the TCP listener fails (the error is thrown after). */
  async start(): Promise<void> {
    const { Aedes } = await import('aedes');
    const aedesOptions: AedesOptions = { id: startOrderedBrokerId() };
    const { username, password } = this.options;
    // Either credential set turns authentication on: a password alone must not leave the broker open.
    if (username !== undefined || password !== undefined) {
      aedesOptions.authenticate = (_client, user, pass, callback) => {
        const ok = sameSecret(user, username ?? '') && sameSecret(pass, password ?? '');
        if (ok) return callback(null, true);
        // CONNACK 4: bad user name or password.
        const error = Object.assign(new Error('bad user name or password'), { returnCode: 4 });
        callback(error as Parameters<typeof callback>[0], false);
      };
    }
    if (this.options.redis) {
      const redis = new RedisBackend(this.options.redis);
      this.redis = redis;
      redis.on('unreachable', (reason) => this.emit('redis-state', reason));
      redis.on('reachable', () => this.emit('redis-state', undefined));
      aedesOptions.mq = redis.mq;
    } else if (this.options.persistenceDirectory) {
      // LevelDB through classic-level, the engine of the outbox too: prebuilt, nothing to compile.
      const db = new ClassicLevel(this.options.persistenceDirectory);
      await db.open();
      this.db = db;
    }
    const persistence =
      this.redis?.persistence ??
      (this.db ? new AsyncLevelPersistence(this.db) : new AsyncMemoryPersistence());
    const redis = this.redis;
    const bounded = boundOfflineQueues(persistence, {
      maxMessages: this.options.maxOfflineMessages,
      isConnected: (clientId) => this.connectedClientIds.has(clientId),
      onDrop: (clientId, packet) => this.emit('offline-dropped', clientId, packet.topic ?? ''),
      queueLength: redis && ((clientId) => redis.outgoingQueueLength(clientId)),
    });
    aedesOptions.persistence = noteQueueResends(bounded);
    // With Redis away this waits for it (the persistence reads the stored sessions first).
    const aedes = await Aedes.createBroker(aedesOptions);
    this.aedes = aedes;
    const countChanged = () => this.emit('clients', aedes.connectedClients);
    // 'client' and 'clientDisconnect' come as Aedes registers and unregisters a client id.
    aedes.on('client', (client) => this.connectedClientIds.add(client.id));
    aedes.on('clientDisconnect', (client) => this.connectedClientIds.delete(client.id));
    aedes.on('clientReady', countChanged);
    aedes.on('clientDisconnect', countChanged);
    aedes.on('clientError', (client, error) => this.emit('client-error', client?.id ?? '', error));
    if (this.options.wsPath && this.options.httpServer)
      this.attachWebSocket(this.options.httpServer, this.options.wsPath);
    if (this.options.port > 0) await this.listenTcp(aedes);
  }

  /** A start still waiting for Redis gives up (start() rejects); nothing otherwise. */
  abandonStart(): void {
    if (!this.aedes) void this.redis?.close();
  }

  connectInProcess(): Duplex {
    if (!this.aedes || this.aedes.closed) throw new Error('embedded broker is not running');
    const [clientEnd, brokerEnd] = createDuplexPair();
    this.inProcessStreams.add(brokerEnd);
    brokerEnd.once('close', () => this.inProcessStreams.delete(brokerEnd));
    this.accept(this.aedes, brokerEnd);
    return clientEnd;
  }

  /** Closes listeners, every connection and the broker, so the port is free when this resolves. */
  async close(): Promise<void> {
    if (this.upgradeListener) this.options.httpServer?.off('upgrade', this.upgradeListener);
    this.upgradeListener = undefined;
    for (const ws of this.wsServer?.clients ?? []) ws.terminate();
    this.wsServer?.close();
    const tcpServer = this.tcpServer;
    const tcpClosed = tcpServer
      ? new Promise<void>((resolve) => tcpServer.close(() => resolve()))
      : Promise.resolve();
    for (const socket of this.tcpSockets) socket.destroy();
    for (const stream of this.inProcessStreams) stream.destroy();
    const aedes = this.aedes;
    const aedesClosed =
      aedes && !aedes.closed ? new Promise<void>((resolve) => aedes.close(() => resolve())) : undefined;
    await Promise.all([tcpClosed, aedesClosed]);
    this.tcpServer = undefined;
    await this.db?.close();
    this.db = undefined;
    await this.redis?.close();
  }

  /** Hands a connection to Aedes, with every message delivered once (see aedes-delivery.ts), after the CONNACK. */
  private accept(aedes: Aedes, stream: Duplex, req?: IncomingMessage) {
    const client = aedes.handle(stream, req);
    dedupeDeliveriesExactly(client);
    deliverAfterConnack(client);
  }

  private listenTcp(aedes: Aedes): Promise<void> {
    const server = net.createServer((socket) => {
      // Nagle's algorithm would hold small MQTT packets back for up to 40 ms.
      socket.setNoDelay(true);
      this.tcpSockets.add(socket);
      socket.once('close', () => this.tcpSockets.delete(socket));
      this.accept(aedes, socket);
    });
    this.tcpServer = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.tcpServer = undefined;
        reject(error);
      });
      server.listen(this.options.port, this.options.bind, () => {
        this.listeningAddress = server.address() as net.AddressInfo;
        resolve();
      });
    });
  }

  private attachWebSocket(httpServer: HttpServer, path: string) {
    const wsServer = new WebSocketServer({ noServer: true });
    this.wsServer = wsServer;
    wsServer.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => ws.terminate());
      if (this.aedes) this.accept(this.aedes, stream, req);
    });
    this.upgradeListener = (req, socket, head) => {
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (pathname !== path) return;
      wsServer.handleUpgrade(req, socket, head, (ws) => wsServer.emit('connection', ws, req));
    };
    httpServer.on('upgrade', this.upgradeListener);
  }
}
