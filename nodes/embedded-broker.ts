import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { Server as HttpServer } from 'node:http';
import type { TlsOptions } from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_OFFLINE_MESSAGES, EmbeddedBroker } from './lib/broker/aedes/embedded-broker.js';
import type { Identity } from './lib/broker/acl.js';
import { resolveAccess, type AccessCredentials, type AccessSettings } from './lib/broker/access-settings.js';
import { readLimits } from './lib/broker/limits.js';
import { hashPassword } from './lib/broker/passwords.js';
import { ThrottledReport } from './lib/broker/throttled-report.js';
import { embeddedBrokers } from './lib/broker/registry.js';
import { readBoolean, readNumber, readString } from './lib/config-values.js';
import { translator } from './node-red/i18n.js';
import { nodeDataDirectory } from './node-red/data-directory.js';
import { tlsConfigNode, type TlsConfigNode } from './node-red/tls-config.js';
import {
  exposedStatus,
  failedStatus,
  droppingStatus,
  throttledStatus,
  workingStatus,
} from './node-red/status.js';
import { isLoopback } from './lib/broker/listeners.js';
import { metricsEnabled } from './node-red/monitor/metrics.js';
import { reportBroker } from './node-red/monitor/registry.js';
import { serveAdminRoutes } from './node-red/monitor/serve.js';

interface EmbeddedBrokerDef extends NodeDef, AccessSettings {
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
  maxConnections?: string | number;
  /** Bytes, fixed header included. */
  maxPacketSize?: string | number;
  maxTopicLevels?: string | number;
  /** Seconds a new connection has to send its CONNECT. */
  connectTimeout?: string | number;
  /** The longest keep-alive of an MQTT 5 client, in seconds (Server Keep Alive); 0 or empty: the client's own. */
  maxKeepAlive?: string | number;
  /** Close connections whose topics, client id or user name hold control characters (as Mosquitto). */
  refuseControlCharacters?: boolean | string;
  /** A tls-config node: its certificate and key serve MQTT over TLS and secure WebSocket. */
  tls?: string;
  /** MQTT over TLS; 0 or empty: none. */
  tlsPort?: string | number;
  /** Secure WebSocket on a port of the broker's own; 0 or empty: none. */
  wssPort?: string | number;
  /** Publish Mosquitto's `$SYS/broker/…` topics. */
  sysTopics?: boolean | string;
  /** Seconds between two publications of the `$SYS` topics. */
  sysInterval?: string | number;
}

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Mosquitto's sys_interval. */
const DEFAULT_SYS_INTERVAL_SECONDS = 10;

/** This package's version, shown in `$SYS/broker/version` (the node file runs from dist/nodes/). */
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;

type EmbeddedBrokerCredentials = AccessCredentials & { redisPassword?: string };

/**
 * A TLS server's options from a tls-config node, or a reason it cannot serve.
 * With a CA certificate, clients must present a certificate it signed,
 * verified unless the node's verification is off.
 */
function serverTlsOptions(tlsNode: TlsConfigNode): TlsOptions | 'no-certificate' {
  const options: TlsOptions = {};
  tlsNode.addTLSOptions(options);
  if (!options.key || !options.cert) return 'no-certificate';
  const verifyClients = Boolean(options.ca);
  return {
    key: options.key,
    cert: options.cert,
    passphrase: options.passphrase,
    ca: options.ca,
    requestCert: verifyClients,
    rejectUnauthorized: verifyClients && tlsNode.verifyservercert !== false,
  };
}

/** A log line per kind of repeated event at most once a minute. */
const LOG_INTERVAL_MS = 60_000;
/** The longest password the editor may have hashed: scrypt's input, not a place to send megabytes. */
const MAX_PASSWORD_LENGTH = 1024;

function describeClient(identity: Identity): string {
  return identity.username === undefined ? identity.clientId : `${identity.clientId} (${identity.username})`;
}

module.exports = function (RED: NodeAPI) {
  const t = translator(RED);
  const metrics = metricsEnabled(RED);

  function EmbeddedBrokerNode(this: Node<EmbeddedBrokerCredentials>, def: EmbeddedBrokerDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    // The flow contract: 0 or an empty field means no TCP listener; a missing property takes the default.
    const port = def.port === undefined ? 1883 : readNumber(def.port, 0);
    const bind = readString(def.bind).trim() || '127.0.0.1';
    const wsPath = readString(def.wsPath).trim();
    const httpRoot = (RED.settings.httpNodeRoot as string | false | undefined) || '/';
    const diskDirectory = nodeDataDirectory(RED, 'broker', node);
    const persistenceDirectory = def.persistence === 'disk' ? diskDirectory : undefined;
    // Without a user directory the broker still runs, keeping its sessions in memory.
    if (def.persistence === 'disk' && !diskDirectory) node.error(t('errors.no-user-dir'));
    // Switched away from disk: what it stored stays there, unused; the user decides its fate.
    if (def.persistence !== 'disk' && diskDirectory && existsSync(diskDirectory))
      node.warn(
        t('errors.broker-disk-unused', { mode: def.persistence ?? 'memory', directory: diskDirectory }),
      );

    /** Anyone on the network may connect: no user, anonymous clients from the network allowed. */
    let openToNetwork = false;
    const access = resolveAccess(def, node.credentials).then((resolved) => {
      if (resolved.credentialsToStore) void RED.nodes.addCredentials(node.id, resolved.credentialsToStore);
      for (const username of resolved.usersWithoutPassword)
        node.warn(t('errors.user-without-password', { username }));
      const { users, anonymous, anonymousFromNetwork } = resolved.config;
      if (users.length === 0 && !anonymous) node.warn(t('errors.nobody-may-connect'));
      // Reachable from other machines (a listener not on loopback, or Node-RED's own server) by anyone.
      const reachable = (port > 0 && !isLoopback(bind)) || wsPath !== '';
      openToNetwork =
        reachable && users.length === 0 && anonymous !== undefined && anonymousFromNetwork === true;
      if (openToNetwork) node.warn(t('errors.open-to-network'));
      return resolved.config;
    });
    let tls: { options: TlsOptions; port: number; wssPort: number } | undefined;
    if (def.tls) {
      const tlsNode = tlsConfigNode(RED, def.tls);
      const options = tlsNode ? serverTlsOptions(tlsNode) : 'no-certificate';
      if (options === 'no-certificate') node.error(t('errors.tls-no-certificate'));
      else
        tls = {
          options,
          port: def.tlsPort === undefined ? 8883 : readNumber(def.tlsPort, 0),
          wssPort: readNumber(def.wssPort, 0),
        };
    }
    const sysTopics = readBoolean(def.sysTopics, false);
    const sysIntervalSeconds = Math.min(
      86_400,
      Math.max(1, readNumber(def.sysInterval, DEFAULT_SYS_INTERVAL_SECONDS)),
    );
    const broker = new EmbeddedBroker({
      port,
      bind,
      wsPath: wsPath ? `${httpRoot.replace(/\/$/, '')}/${wsPath.replace(/^\//, '')}` : undefined,
      httpServer: RED.server as unknown as HttpServer,
      access,
      persistenceDirectory,
      redis:
        def.persistence === 'redis'
          ? {
              url: readString(def.redisUrl).trim() || DEFAULT_REDIS_URL,
              password: node.credentials?.redisPassword || undefined,
            }
          : undefined,
      maxOfflineMessages: Math.max(0, readNumber(def.maxOfflineMessages, DEFAULT_MAX_OFFLINE_MESSAGES)),
      limits: readLimits(def),
      tls,
      // Counted only for the $SYS topics or the metrics endpoint: otherwise no connection carries a counter.
      statistics:
        sysTopics || metrics
          ? { version: PACKAGE_VERSION, sysIntervalMs: sysTopics ? sysIntervalSeconds * 1000 : 0 }
          : undefined,
    });
    const stopReporting = reportBroker({
      id: node.id,
      name: node.name || '',
      broker,
      listeners: () => {
        const { tls: tlsAddress, wss: wssAddress } = broker.secureAddresses;
        const httpAddress = wsPath ? RED.server.address() : null;
        return [
          broker.listeningAddress && { kind: 'tcp' as const, port: broker.listeningAddress.port },
          tlsAddress && { kind: 'tls' as const, port: tlsAddress.port },
          typeof httpAddress === 'object' && httpAddress && { kind: 'ws' as const, port: httpAddress.port },
          wssAddress && { kind: 'wss' as const, port: wssAddress.port },
        ].filter((listener) => !!listener);
      },
    });
    let listenError: string | undefined;
    let redisUnreachable: string | undefined;
    let closing = false;
    let running = false;
    let offlineDropped = 0;

    const showStatus = () => {
      if (listenError) return node.status(failedStatus(listenError));
      if (redisUnreachable) return node.status(failedStatus(redisUnreachable));
      const clients = t('status.clients', { count: broker.clientCount });
      const { tls: tlsAddress, wss: wssAddress } = broker.secureAddresses;
      const addresses = [
        broker.listeningAddress && `${broker.listeningAddress.address}:${broker.listeningAddress.port}`,
        tlsAddress && t('status.tls-port', { port: tlsAddress.port }),
        wssAddress && t('status.wss-port', { port: wssAddress.port }),
      ].filter(Boolean);
      const where = addresses.length ? addresses.join(' · ') : t('status.in-process-only');
      const dropped = offlineDropped ? ` · ${t('status.offline-dropped', { count: offlineDropped })}` : '';
      const exposed = openToNetwork ? ` · ${t('status.open-to-network')}` : '';
      const text = `${where} · ${clients}${exposed}${dropped}`;
      if (offlineDropped) node.status(droppingStatus(text));
      else node.status(openToNetwork ? exposedStatus(text) : workingStatus(text));
    };
    broker.on('clients', showStatus);

    // What clients do wrong is logged, never faster than once a minute per kind, and never with a payload.
    const reports = {
      offlineDropped: new ThrottledReport<{ clientId: string; topic: string }>(
        LOG_INTERVAL_MS,
        (count, last) =>
          node.warn(
            t('errors.offline-dropped', {
              count,
              max: broker.maxOfflineMessages,
              client: last.clientId,
              topic: last.topic,
              total: offlineDropped,
            }),
          ),
      ),
      publishRefused: new ThrottledReport<{ identity: Identity; topic: string }>(
        LOG_INTERVAL_MS,
        (count, last) =>
          node.warn(
            t('errors.publish-not-allowed', {
              count,
              client: describeClient(last.identity),
              topic: last.topic,
            }),
          ),
      ),
      subscribeRefused: new ThrottledReport<{ identity: Identity; filter: string }>(
        LOG_INTERVAL_MS,
        (count, last) =>
          node.warn(
            t('errors.subscribe-not-allowed', {
              count,
              client: describeClient(last.identity),
              filter: last.filter,
            }),
          ),
      ),
      violation: new ThrottledReport<{ client: string; reason: string }>(LOG_INTERVAL_MS, (count, last) =>
        node.warn(t('errors.client-closed', { count, client: last.client, reason: last.reason })),
      ),
      anonymousRefused: new ThrottledReport<{ client: string }>(LOG_INTERVAL_MS, (count, last) =>
        node.warn(t('errors.anonymous-from-network', { count, client: last.client })),
      ),
      quotaDisconnected: new ThrottledReport<{ clientId: string; max: number }>(
        LOG_INTERVAL_MS,
        (count, last) => node.warn(t('errors.quota-disconnected', { count, ...last })),
      ),
      tooLargeDiscarded: new ThrottledReport<{
        clientId: string;
        topic: string;
        size: number;
        maximum: number;
      }>(LOG_INTERVAL_MS, (count, last) => node.warn(t('errors.too-large-for-client', { count, ...last }))),
    };
    // Drops can come by the thousand: the status follows them at the pace of a busy node's.
    const statusThrottle = throttledStatus(showStatus);
    broker.on('offline-dropped', (clientId, topic) => {
      offlineDropped++;
      reports.offlineDropped.add({ clientId, topic });
      statusThrottle.soon();
    });
    broker.on('publish-refused', (identity, topic) => reports.publishRefused.add({ identity, topic }));
    broker.on('subscribe-refused', (identity, filter) => reports.subscribeRefused.add({ identity, filter }));
    broker.on('violation', (client, reason) => reports.violation.add({ client, reason }));
    broker.on('anonymous-refused', (client) => reports.anonymousRefused.add({ client }));
    broker.on('quota-disconnected', (clientId, max) => reports.quotaDisconnected.add({ clientId, max }));
    broker.on('too-large-discarded', (clientId, topic, size, maximum) =>
      reports.tooLargeDiscarded.add({ clientId, topic, size, maximum }),
    );
    broker.on('redis-state', (reason) => {
      if (reason) {
        // Once per outage in the log; the status follows each new reason.
        if (!redisUnreachable) node.warn(t('errors.redis-unreachable', { reason }));
        redisUnreachable = t('status.redis-unreachable', { reason });
      } else if (redisUnreachable) {
        redisUnreachable = undefined;
        node.log(t('log.redis-reachable'));
      }
      // Reachable at last while starting: the status comes once the broker listens.
      if (reason || running) showStatus();
    });

    const logListening = () => {
      const { tls: tlsAddress, wss: wssAddress } = broker.secureAddresses;
      for (const [address, key] of [
        [broker.listeningAddress, 'listening'],
        [tlsAddress, 'listening-tls'],
        [wssAddress, 'listening-wss'],
      ] as const) {
        if (address) node.log(t(`log.${key}`, { address: `${address.address}:${address.port}` }));
      }
    };
    const started = broker.start().then(logListening, (error: NodeJS.ErrnoException & { port?: number }) => {
      // A start that waited for Redis was given up by the close below: no fault of the broker's.
      if (closing) return;
      logListening();
      // Listen errors carry the port that failed: the TCP, TLS or WebSocket one.
      const failedPort = error.port ?? port;
      listenError =
        error.code === 'EADDRINUSE'
          ? t('errors.port-in-use', { port: failedPort, bind })
          : error.code === 'EACCES'
            ? t('errors.port-denied', { port: failedPort, bind })
            : t('errors.broker-start-failed', { reason: error.message });
      node.error(listenError);
    });
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
      stopReporting();
      broker.removeAllListeners();
      statusThrottle.cancel();
      for (const report of Object.values(reports)) report.close();
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
      // Password hashes by user name (JSON): the editor gets hashes, never a password.
      passwords: { type: 'text' },
      // The single user of earlier versions, read once and turned into a user of the list.
      user: { type: 'text' },
      password: { type: 'password' },
      redisPassword: { type: 'password' },
    },
  });

  serveAdminRoutes(RED);

  // The editor sends a new password here once and saves only the hash it gets back.
  RED.httpAdmin.post(
    '/durable-mqtt-embedded-broker/password-hash',
    RED.auth.needsPermission('durable-mqtt-embedded-broker.write'),
    (req, res) => {
      const password: unknown = (req.body as { password?: unknown } | undefined)?.password;
      if (typeof password !== 'string' || password === '' || password.length > MAX_PASSWORD_LENGTH)
        return void res.status(400).json({ error: 'password must be a string of 1 to 1024 characters' });
      hashPassword(password).then(
        (hash) => res.json({ hash }),
        () => res.status(500).json({ error: 'hashing failed' }),
      );
    },
  );
};
