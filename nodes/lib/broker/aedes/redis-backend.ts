/**
 * Redis behind an embedded broker, so that several embedded brokers (in several
 * Node-RED instances) form one: aedes-persistence-redis keeps retained messages,
 * persistent sessions and their queues where every broker reads them, and
 * mqemitter-redis carries each message to the subscribers of every broker.
 *
 * Both libraries run on connections opened here, so that a Redis outage is seen
 * (events for the status), waited out (nothing fails while Redis is away) and
 * never stops Node-RED (no unhandled 'error' event or rejection).
 */
import { EventEmitter } from 'node:events';
import { Redis, type Command, type RedisOptions } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import { MQ_CONCURRENCY } from './message-bus.js';
import { RedisPersistence } from './persistence-patches.js';

export interface RedisBackendOptions {
  /** `redis://[user@]host:port/db`, or `rediss://` for TLS. */
  url: string;
  /** The Redis password, when the URL carries none. */
  password?: string;
}

export interface RedisBackendEvents {
  /** Every connection is up (again). */
  reachable: [];
  /** A connection is down; `reason` is the last error seen. Comes again when the reason changes. */
  unreachable: [reason: string];
}

/** What mqemitter-redis has and its types leave out. */
interface MQEmitterRedisInternals {
  /** Re-emits the connections' errors: unheard, an 'error' event stops Node-RED. */
  state: EventEmitter;
  /** Set once close() was called (by Aedes, as it closes). */
  closing?: boolean;
}

/** The longest wait between two attempts to reach Redis. */
const MAX_RETRY_DELAY_MS = 2000;

/**
 * An ioredis connection that can be stopped at any moment, and whose failures
 * are always someone's: both libraries send some commands without awaiting
 * them (lrem, rpush, quit), and one of those failing as Redis goes away would be
 * an unhandled rejection, which stops Node-RED.
 */
class StoppableRedis extends Redis {
  /** Shared with the retry strategy, which is given before `this` exists. */
  private readonly stop: { requested: boolean };

  constructor(url: string, options: RedisOptions) {
    const stop = { requested: false };
    super(url, {
      ...options,
      retryStrategy: (attempt) => (stop.requested ? null : Math.min(attempt * 250, MAX_RETRY_DELAY_MS)),
    });
    this.stop = stop;
    // An attempt made after stop() was asked for (see disconnect) ends as soon as it connects.
    this.on('ready', () => {
      if (this.stop.requested) super.disconnect();
    });
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    // The caller still gets the rejection; this only marks it handled for callers that never look.
    command.promise.catch(() => undefined);
    // A QUIT sent while Redis is away waits for a connection: the next attempt is the last.
    if (command.name === 'quit') this.stop.requested = true;
    return super.sendCommand(command, stream);
  }

  override disconnect(reconnect = false): void {
    if (!reconnect) this.stop.requested = true;
    // Between two attempts ioredis has no socket to close: told to disconnect it clears its timer and
    // never ends, and a quit() waiting on it never returns. The attempt due is made instead, and the
    // connection ends after it, whether it connects (the 'ready' listener) or not (the retry strategy).
    if (!reconnect && this.status === 'reconnecting') return;
    super.disconnect(reconnect);
  }

  /** Resolves once the connection is ready; rejects if it ends first. */
  async ready(): Promise<void> {
    if (this.status === 'ready') return;
    if (this.status === 'end') throw new Error('the connection to Redis has ended');
    await new Promise<void>((resolve, reject) => {
      const onReady = () => {
        this.off('end', onEnd);
        resolve();
      };
      const onEnd = () => {
        this.off('ready', onReady);
        reject(new Error('the connection to Redis ended before it was ready'));
      };
      this.once('ready', onReady);
      this.once('end', onEnd);
    });
  }

  /** Resolves once the connection has ended (at once if it has). */
  async ended(): Promise<void> {
    // Not events.once(): it would reject on the 'error' of the last, failed, attempt.
    if (this.status !== 'end') await new Promise((resolve) => this.once('end', resolve));
  }
}

/** The persistence and message bus Aedes takes as its `persistence` and `mq` options. */
export class RedisBackend extends EventEmitter<RedisBackendEvents> {
  readonly persistence: RedisPersistence;
  readonly mq: ReturnType<typeof MQEmitterRedis>;
  private readonly storage: StoppableRedis;
  private readonly connections: StoppableRedis[];
  private unreachableReason: string | undefined = '';
  private closing: Promise<void> | undefined;

  constructor(options: RedisBackendOptions) {
    super();
    const connectionOptions: RedisOptions = {
      // Commands wait for Redis to come back rather than fail: Aedes acknowledges a QoS 1 PUBLISH
      // before it hands the message on, so a publish that failed would lose an acknowledged message.
      maxRetriesPerRequest: null,
      connectTimeout: 5000,
      ...(options.password ? { password: options.password } : {}),
    };
    this.storage = new StoppableRedis(options.url, connectionOptions);
    // Pipelining batches the publishes of one tick in one write, as mqemitter-redis does for its own connections.
    const publishing = new StoppableRedis(options.url, { ...connectionOptions, enableAutoPipelining: true });
    const subscribing = new StoppableRedis(options.url, connectionOptions);
    this.connections = [this.storage, publishing, subscribing];
    for (const connection of this.connections) {
      connection.on('error', (error: Error) => this.reportUnreachable(error.message || String(error)));
      connection.on('close', () => this.reportUnreachable(this.lastReason()));
      connection.on('ready', () => this.reportIfReachable());
    }
    // -1: a session that resumes gets its whole queue (the offline bound keeps it bounded), not the first 1,000.
    this.persistence = new RedisPersistence({ conn: this.storage, maxSessionDelivery: -1 });
    this.mq = MQEmitterRedis({
      pubConn: publishing,
      subConn: subscribing,
      concurrency: MQ_CONCURRENCY,
      matchEmptyLevels: true, // [MQTT-4.7.1-3], as Aedes' own bus
    });
    // The connections' errors, already heard above.
    this.mqInternals.state.on('error', () => undefined);
  }

  private get mqInternals(): MQEmitterRedisInternals {
    return this.mq as unknown as MQEmitterRedisInternals;
  }

  /** The connection the persistence works on, for the cluster's own state (cluster-state.ts). */
  get storageConnection(): Redis {
    return this.storage;
  }

  /** Whether every connection is up now. */
  get reachable(): boolean {
    return this.connections.every((connection) => connection.status === 'ready');
  }

  /**
   * Resolves once every connection is ready. The message bus subscribes as Aedes starts; a
   * PSUBSCRIBE sent while its connection was still in ioredis' ready check was seen acknowledged and
   * then gone (the next ones counted from 1 again), and the broker missed its own `$SYS/sub/add`
   * broadcast: a persistent session's SUBSCRIBE then never got its SUBACK. Rejects if closed first.
   */
  async ready(): Promise<void> {
    await Promise.all(this.connections.map((connection) => connection.ready()));
  }

  /** Ends every connection, waiting for none to reach Redis; call once Aedes is closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Aedes closes its bus when it closes; this one may never have been handed to Aedes.
      await new Promise<void>((resolve) => this.mq.close(() => resolve()));
      await this.storage.quit().catch(() => undefined);
      await Promise.all(this.connections.map((connection) => connection.ended()));
    })();
    return this.closing;
  }

  private lastReason(): string {
    return this.unreachableReason || 'connection closed';
  }

  private reportUnreachable(reason: string) {
    // Closing is no outage: Aedes closes the bus first, then this.
    if (this.closing || this.mqInternals.closing || reason === this.unreachableReason) return;
    this.unreachableReason = reason;
    this.emit('unreachable', reason);
  }

  private reportIfReachable() {
    if (this.closing || !this.reachable || this.unreachableReason === undefined) return;
    this.unreachableReason = undefined;
    this.emit('reachable');
  }
}
