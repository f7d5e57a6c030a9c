import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Server as HttpServer } from 'node:http';
import path from 'node:path';
import { DEFAULT_MAX_OFFLINE_MESSAGES, EmbeddedBroker } from './lib/aedes-adapter.js';
import { ThrottledReport } from './lib/broker/throttled-report.js';
import { embeddedBrokers } from './lib/embedded-registry.js';
import { readNumber, readString } from './shared/config-values.js';
import type { BrokerCredentials } from './broker-config.js';

interface EmbeddedBrokerDef extends NodeDef {
  port: string | number;
  bind: string;
  wsPath: string;
  /**
   * 'disk' keeps retained messages and persistent sessions across restarts; 'redis' keeps them in
   * Redis, shared with the other embedded brokers on it, which then form one broker.
   */
  persistence?: 'memory' | 'disk' | 'redis';
  /** With 'redis': `redis://host:port/db` (the password is a credential). */
  redisUrl?: string;
  /** Per client with a persistent session, while it is away; 0 means no bound. */
  maxOfflineMessages?: string | number;
}

/** A log line per kind of repeated event at most once a minute. */
const LOG_INTERVAL_MS = 60_000;
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

type EmbeddedBrokerCredentials = BrokerCredentials & { redisPassword?: string };

module.exports = function (RED: NodeAPI) {
  function EmbeddedBrokerNode(this: Node<EmbeddedBrokerCredentials>, def: EmbeddedBrokerDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // The flow contract: 0 or an empty field means no TCP listener; a missing property takes the default.
    const port = def.port === undefined ? 1883 : readNumber(def.port, 0);
    const bind = readString(def.bind).trim() || '127.0.0.1';
    const wsPath = readString(def.wsPath).trim();
    const httpRoot = (RED.settings.httpNodeRoot as string | false | undefined) || '/';
    const userDir = RED.settings.userDir as string | undefined;
    const persistenceDirectory =
      def.persistence === 'disk' && userDir
        ? path.join(userDir, 'durable-mqtt', 'broker', node.id)
        : undefined;
    if (def.persistence === 'disk' && !userDir) node.error(RED._('durable-mqtt.errors.no-user-dir'));
    const broker = new EmbeddedBroker({
      port,
      bind,
      wsPath: wsPath ? `${httpRoot.replace(/\/$/, '')}/${wsPath.replace(/^\//, '')}` : undefined,
      httpServer: RED.server as unknown as HttpServer,
      username: node.credentials?.user || undefined,
      password: node.credentials?.password || undefined,
      persistenceDirectory,
      redis:
        def.persistence === 'redis'
          ? {
              url: readString(def.redisUrl).trim() || DEFAULT_REDIS_URL,
              password: node.credentials?.redisPassword || undefined,
            }
          : undefined,
      maxOfflineMessages: Math.max(0, readNumber(def.maxOfflineMessages, DEFAULT_MAX_OFFLINE_MESSAGES)),
    });
    let listenError: string | undefined;
    let redisUnreachable: string | undefined;
    let closing = false;
    let running = false;
    let offlineDropped = 0;

    const showStatus = () => {
      if (listenError) return node.status({ fill: 'red', shape: 'ring', text: listenError });
      if (redisUnreachable) return node.status({ fill: 'red', shape: 'ring', text: redisUnreachable });
      const clients = RED._('durable-mqtt.status.clients', { count: broker.clientCount });
      const where = broker.listeningAddress
        ? `${broker.listeningAddress.address}:${broker.listeningAddress.port}`
        : RED._('durable-mqtt.status.in-process-only');
      const dropped = offlineDropped
        ? ` · ${RED._('durable-mqtt.status.offline-dropped', { count: offlineDropped })}`
        : '';
      node.status({
        fill: offlineDropped ? 'yellow' : 'green',
        shape: 'dot',
        text: `${where} · ${clients}${dropped}`,
      });
    };
    broker.on('clients', showStatus);
    const dropReport = new ThrottledReport<{ clientId: string; topic: string }>(
      LOG_INTERVAL_MS,
      (count, last) =>
        node.warn(
          RED._('durable-mqtt.errors.offline-dropped', {
            count,
            max: broker.maxOfflineMessages,
            client: last.clientId,
            topic: last.topic,
            total: offlineDropped,
          }),
        ),
    );
    // Drops can come by the thousand: the status follows at most twice a second.
    let statusRefresh: NodeJS.Timeout | undefined;
    const countDrop = (clientId: string, topic: string) => {
      offlineDropped++;
      dropReport.add({ clientId, topic });
      statusRefresh ??= setTimeout(() => {
        statusRefresh = undefined;
        showStatus();
      }, 500);
    };
    broker.on('offline-dropped', countDrop);
    const redisStateChanged = (reason: string | undefined) => {
      if (reason) {
        // Once per outage in the log; the status follows each new reason.
        if (!redisUnreachable) node.warn(RED._('durable-mqtt.errors.redis-unreachable', { reason }));
        redisUnreachable = RED._('durable-mqtt.status.redis-unreachable', { reason });
      } else if (redisUnreachable) {
        redisUnreachable = undefined;
        node.log(RED._('durable-mqtt.log.redis-reachable'));
      }
      // Reachable at last while starting: the status comes once the broker listens.
      if (reason || running) showStatus();
    };
    broker.on('redis-state', redisStateChanged);

    const started = broker.start().then(
      () => {
        if (broker.listeningAddress) {
          node.log(
            RED._('durable-mqtt.log.listening', {
              address: `${broker.listeningAddress.address}:${broker.listeningAddress.port}`,
            }),
          );
        }
      },
      (error: NodeJS.ErrnoException) => {
        // A start that waited for Redis was given up by the close below: no fault of the broker's.
        if (closing) return;
        listenError =
          error.code === 'EADDRINUSE'
            ? RED._('durable-mqtt.errors.port-in-use', { port, bind })
            : error.code === 'EACCES'
              ? RED._('durable-mqtt.errors.port-denied', { port, bind })
              : RED._('durable-mqtt.errors.broker-start-failed', { reason: error.message });
        node.error(listenError);
      },
    );
    // In-process clients can use the broker even when its TCP listener failed.
    started.then(() => {
      if (closing) return;
      running = true;
      embeddedBrokers.register(node.id, broker);
      showStatus();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      broker.abandonStart();
      embeddedBrokers.unregister(node.id, broker);
      broker.off('clients', showStatus);
      broker.off('offline-dropped', countDrop);
      broker.off('redis-state', redisStateChanged);
      dropReport.close();
      clearTimeout(statusRefresh);
      started
        .then(() => broker.close())
        .then(done, (error: Error) => {
          node.error(error.message);
          done();
        });
    });
  }

  RED.nodes.registerType<
    Node<EmbeddedBrokerCredentials>,
    EmbeddedBrokerDef,
    unknown,
    EmbeddedBrokerCredentials
  >('durable-mqtt-embedded-broker', EmbeddedBrokerNode, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
      redisPassword: { type: 'password' },
    },
  });
};
