import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { BrokerConnection } from './lib/connection/broker-connection.js';
import type {
  ConnectionOptions,
  DisconnectReason,
  Endpoint,
  LifecycleMessage,
  ProtocolVersion,
  QoS,
  TlsOptions,
} from './lib/connection/types.js';
import { publishTopicProblem } from './lib/topic.js';
import { readBoolean, readNumber, readQos, readString } from './lib/config-values.js';
import { describeReason, forgetFailure, isNewFailure, refusalKey } from './node-red/disconnect-reason.js';
import { probeConnection, type ProbeResult } from './lib/connection/probe.js';
import { translator } from './node-red/i18n.js';
import { tlsConfigNode } from './node-red/tls-config.js';
import {
  BROKER_OVERRIDE_KEYS,
  BrokerOverrideError,
  applyBrokerOverride,
} from './node-red/broker-override.js';
import { nodeDataDirectory } from './node-red/data-directory.js';
import { reportConnection } from './node-red/monitor/registry.js';
import { serveAdminRoutes } from './node-red/monitor/serve.js';
import { SessionLedger, describeEndpoint, isPersistent } from './node-red/session-record.js';

const TRANSPORTS = ['embedded', 'mqtt', 'mqtts', 'ws', 'wss'] as const;
type Transport = (typeof TRANSPORTS)[number];
const DEFAULT_PORTS: Record<Exclude<Transport, 'embedded'>, number> = {
  mqtt: 1883,
  mqtts: 8883,
  ws: 80,
  wss: 443,
};

export interface BrokerConfigDef extends NodeDef {
  transport: Transport;
  embedded: string;
  host: string;
  port: string | number;
  path: string;
  protocolVersion: string | number;
  clientId: string;
  keepalive: string | number;
  cleanSession: boolean | string;
  sessionExpiry: string | number;
  tls: string;
  /** Off: the connection waits for a msg.action "connect" (absent in older flows: on). */
  autoConnect?: boolean | string;
  /** MQTT 5: publish with topic aliases the client assigns (absent in older flows: off). */
  topicAliases?: boolean | string;
  birthTopic: string;
  birthPayload: string;
  birthQos: string | number;
  birthRetain: boolean | string;
  closeTopic: string;
  closePayload: string;
  closeQos: string | number;
  closeRetain: boolean | string;
  willTopic: string;
  willPayload: string;
  willQos: string | number;
  willRetain: boolean | string;
}

/** The settings that say where and how to connect. */
type EndpointFields = Pick<
  BrokerConfigDef,
  'transport' | 'embedded' | 'host' | 'port' | 'path' | 'protocolVersion'
>;

export interface BrokerCredentials {
  user?: string;
  password?: string;
}

/** The broker config node as the in and out nodes see it. */
export interface BrokerConfigNode extends Node<BrokerCredentials> {
  connection: BrokerConnection;
  /** Whether subscriptions outlive a redeploy (persistent session), with the settings in force. */
  readonly persistentSession: boolean;
  /**
   * Applies the settings of a msg.broker (core's keys) for the next connect, taking a connection that
   * is up down first when msg.broker says `force`; rejects with a translated error, before anything
   * changes, when one cannot be used or the connection is up without `force`.
   */
  override(brokerMsg: unknown): Promise<void>;
}

/** What the edit dialog sends to test a connection: its current values, `id` to find a saved password. */
interface TestConnectionRequest
  extends EndpointFields, Pick<BrokerConfigDef, 'keepalive' | 'tls'>, BrokerCredentials {
  id?: string;
}

/** How a connection test ended, for the edit dialog to say in its own language. */
type TestConnectionResponse =
  | { outcome: 'connected' | 'timeout' | 'tls-not-deployed' }
  /** `reasonKey`: the catalog key that explains a refusal, when there is one; `message` otherwise. */
  | { outcome: 'failed'; reason: DisconnectReason; reasonKey?: string };

/** The value Node-RED's editor shows and sends in place of a saved password. */
const SAVED_PASSWORD = '__PWRD__';
/** How long a connection test waits for the broker's answer, in ms. */
const TEST_TIMEOUT = 10_000;

function testConnectionResponse(result: ProbeResult): TestConnectionResponse {
  if (result.outcome !== 'failed') return { outcome: result.outcome };
  const { reason } = result;
  const reasonKey = reason.code === 'refused' ? refusalKey(reason.returnCode ?? 0) : undefined;
  return reasonKey ? { outcome: 'failed', reason, reasonKey } : { outcome: 'failed', reason };
}

/** 21 characters: within the 23 that every MQTT 3.1.1 broker must accept. */
function randomClientId(): string {
  return `durable-mqtt-${randomBytes(4).toString('hex')}`;
}

/** Where to connect and with which protocol, from a config's saved values or from its edit dialog. */
function endpointOf(def: EndpointFields): {
  transport: Transport;
  endpoint: Endpoint;
  protocolVersion: ProtocolVersion;
} {
  const transport: Transport = TRANSPORTS.includes(def.transport)
    ? def.transport
    : def.embedded
      ? 'embedded'
      : 'mqtt';
  const asked = readNumber(def.protocolVersion, 4);
  const protocolVersion: ProtocolVersion = asked === 5 || asked === 3 ? asked : 4;
  if (transport === 'embedded')
    return { transport, endpoint: { transport, brokerId: readString(def.embedded) }, protocolVersion };
  const endpoint: Endpoint = {
    transport,
    host: readString(def.host, 'localhost').trim() || 'localhost',
    port: readNumber(def.port, DEFAULT_PORTS[transport]),
  };
  if (transport === 'ws' || transport === 'wss') endpoint.path = readString(def.path).trim() || '/mqtt';
  return { transport, endpoint, protocolVersion };
}

module.exports = function (RED: NodeAPI) {
  const t = translator(RED);

  function lifecycleMessage(
    node: Node,
    def: BrokerConfigDef,
    kind: 'birth' | 'close' | 'will',
  ): LifecycleMessage | undefined {
    const topic = readString(def[`${kind}Topic`]).trim();
    if (!topic) return undefined;
    const problem = publishTopicProblem(topic);
    if (problem) {
      node.error(
        t('errors.invalid-lifecycle-topic', {
          kind: t(`lifecycle.${kind}`),
          topic,
          reason: t(`topic-problem.${problem}`),
        }),
      );
      return undefined;
    }
    return {
      topic,
      payload: readString(def[`${kind}Payload`]),
      qos: (readQos(def[`${kind}Qos`]) ?? 0) as QoS,
      retain: readBoolean(def[`${kind}Retain`], false),
    };
  }

  /** TLS settings for `mqtts` and `wss`, from the config's TLS node when it is deployed; undefined otherwise. */
  function tlsOptions(transport: Transport, tlsNodeId: string): TlsOptions | undefined {
    if (transport !== 'mqtts' && transport !== 'wss') return undefined;
    const tls: Record<string, unknown> = { rejectUnauthorized: true };
    tlsConfigNode(RED, tlsNodeId)?.addTLSOptions(tls);
    return tls as unknown as TlsOptions;
  }

  function BrokerConfig(this: BrokerConfigNode, def: BrokerConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const { transport, endpoint, protocolVersion } = endpointOf(def);
    const cleanSession = readBoolean(def.cleanSession, true);
    let clientId = readString(def.clientId).trim();
    if (!clientId) {
      clientId = randomClientId();
      if (!cleanSession) node.warn(t('errors.no-client-id'));
    }
    const options: ConnectionOptions = {
      endpoint,
      clientId,
      protocolVersion,
      autoConnect: readBoolean(def.autoConnect, true),
      topicAliases: readBoolean(def.topicAliases, false),
      keepalive: readNumber(def.keepalive, 60),
      cleanSession,
      username: node.credentials?.user || undefined,
      password: node.credentials?.password || undefined,
      birth: lifecycleMessage(node, def, 'birth'),
      close: lifecycleMessage(node, def, 'close'),
      will: lifecycleMessage(node, def, 'will'),
    };
    const sessionExpiry = readNumber(def.sessionExpiry, 0);
    if (sessionExpiry > 0) options.sessionExpiryInterval = sessionExpiry;
    const tls = tlsOptions(transport, def.tls);
    if (tls) options.tls = tls;

    node.connection = new BrokerConnection(options);
    Object.defineProperty(node, 'persistentSession', { get: () => isPersistent(node.connection.options) });
    if (!cleanSession && !node.persistentSession) node.warn(t('errors.session-expiry-zero'));
    const sessionDirectory = nodeDataDirectory(RED, 'session', node);
    const ledger = sessionDirectory ? new SessionLedger(sessionDirectory) : undefined;
    /** Says what the broker still holds of the session the config had before, if it had another. */
    const reportSessionLeft = (settings: ConnectionOptions) => {
      const found = ledger?.leftBehind(settings);
      if (!found) return;
      const { left, discarded } = found;
      const expiry = left.sessionExpiry
        ? ` ${t('errors.session-expires', { seconds: left.sessionExpiry })}`
        : '';
      node.warn(t(discarded ? 'errors.session-discarded' : 'errors.session-left', { ...left, expiry }));
    };
    reportSessionLeft(options);
    node.override = async (brokerMsg) => {
      const connection = node.connection;
      let override;
      try {
        override = applyBrokerOverride(connection.options, brokerMsg, (transport) =>
          tlsOptions(transport as Transport, def.tls),
        );
      } catch (error) {
        if (!(error instanceof BrokerOverrideError)) throw error;
        const accepted = BROKER_OVERRIDE_KEYS.join(', ');
        throw new Error(t(`errors.broker-override.${error.problem}`, { key: error.key, accepted }));
      }
      if (!override.options.clientId) override.options.clientId = randomClientId();
      const down = connection.state === 'idle' || connection.state === 'stopped';
      if (!down && !override.force) throw new Error(t('errors.broker-override.connected'));
      if (!down) await connection.disconnect();
      connection.reconfigure(override.options);
      // The keys only: their values may be credentials.
      node.log(t('log.broker-override', { keys: override.keys.join(', '), broker: address() }));
      reportSessionLeft(override.options);
    };
    node.connection.on('status', (status) => {
      if (status.state !== 'connected') return;
      ledger?.connected(node.connection.options);
    });
    const address = () => describeEndpoint(node.connection.options.endpoint);
    node.connection.on('status', (status) => {
      if (status.state === 'connected') {
        forgetFailure(node.id);
        node.log(t('log.connected', { broker: address() }));
      } else if (status.state === 'disconnected' && status.reason) {
        const named = def.name ? `"${def.name}" (${address()})` : address();
        const reason = describeReason(t, status.reason);
        // Said once per cause, not at every retry nor at every deploy, until the config connects.
        if (!isNewFailure(node.id, reason)) return;
        // By a node that uses the config, which the debug sidebar can show on the canvas (a config node it cannot).
        const [user] = node.connection.registered;
        const speaker = (user as Node | undefined) ?? node;
        const text = t('log.disconnected', { broker: named, reason });
        if (status.reason.code === 'lost') speaker.log(text);
        else speaker.error(text);
      }
    });
    node.connection.on('shared-overlap', (filter, other) => {
      node.warn(t('errors.shared-overlap', { topic: filter, other }));
    });
    node.connection.on('subscription-given-up', (filter, released) => {
      node.warn(t('errors.subscription-given-up', { topic: filter, count: released }));
    });
    node.connection.on('subscription-options-conflict', (filter, asked, inForce) => {
      const describe = (o: typeof asked) => `nl ${o.nl}, rap ${o.rap}, rh ${o.rh}`;
      node.warn(
        t('errors.subscription-options-conflict', {
          topic: filter,
          asked: describe(asked),
          inForce: describe(inForce),
        }),
      );
    });
    node.connection.on('subscribe-failure', (failure) => {
      node.error(t('errors.subscribe-refused', { topic: failure.filter, code: failure.returnCode }));
    });

    const stopReporting = reportConnection({
      id: node.id,
      name: def.name || '',
      connection: node.connection,
    });
    node.on('close', (removed: boolean, done: () => void) => {
      stopReporting();
      if (removed) {
        forgetFailure(node.id);
        // Its in nodes, deleted with it, took their subscriptions off the broker: nothing is left to name.
        ledger?.forget();
      }
      node.connection.close().then(done, done);
    });
  }

  RED.nodes.registerType<BrokerConfigNode, BrokerConfigDef, unknown, BrokerCredentials>(
    'durable-mqtt-broker-config',
    BrokerConfig,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );

  /**
   * The edit dialog's "test connection": one connection with the dialog's current
   * values (saved or not), answered with how it ended. It uses a client ID of its
   * own and a clean session, so a running connection and its persistent session
   * are left alone, and publishes nothing (no birth or will message).
   */
  serveAdminRoutes(RED);

  RED.httpAdmin.post(
    '/durable-mqtt-broker-config/test-connection',
    RED.auth.needsPermission('durable-mqtt-broker-config.write'),
    (req: Request, res: Response) => {
      const body = (req.body ?? {}) as Partial<TestConnectionRequest>;
      const { transport, endpoint, protocolVersion } = endpointOf(body as TestConnectionRequest);
      if (endpoint.transport === 'embedded' && !endpoint.brokerId)
        return void res.status(400).json({ error: 'no embedded broker chosen' });
      const tlsNodeId = readString(body.tls).trim();
      const tls = tlsOptions(transport, tlsNodeId);
      if (tls && tlsNodeId && !tlsConfigNode(RED, tlsNodeId))
        return void res.json({ outcome: 'tls-not-deployed' } satisfies TestConnectionResponse);
      // The dialog shows a saved password as __PWRD__ and sends it so: the saved one is meant.
      let password = readString(body.password);
      if (password === SAVED_PASSWORD) {
        const saved = body.id
          ? (RED.nodes.getCredentials(readString(body.id)) as BrokerCredentials | undefined)
          : undefined;
        password = saved?.password ?? '';
      }
      const options: ConnectionOptions = {
        endpoint,
        clientId: randomClientId(),
        protocolVersion,
        keepalive: readNumber(body.keepalive, 60),
        cleanSession: true,
        username: readString(body.user) || undefined,
        password: password || undefined,
        tls,
      };
      probeConnection(options, TEST_TIMEOUT).then(
        (result) => res.json(testConnectionResponse(result)),
        (error: Error) => res.status(500).json({ error: error.message }),
      );
    },
  );
};
