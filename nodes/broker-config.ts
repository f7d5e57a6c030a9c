import { randomBytes } from 'node:crypto';
import type { Node, NodeAPI, NodeDef } from 'node-red';
import {
  BrokerConnection,
  type ConnectionOptions,
  type Endpoint,
  type LifecycleMessage,
  type QoS,
  type TlsOptions,
} from './lib/connection.js';
import { publishTopicProblem } from './lib/topic.js';
import { readBoolean, readNumber, readQos, readString } from './shared/config-values.js';
import { describeReason } from './shared/status.js';

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

export interface BrokerCredentials {
  user?: string;
  password?: string;
}

/** The broker config node as the in and out nodes see it. */
export interface BrokerConfigNode extends Node<BrokerCredentials> {
  connection: BrokerConnection;
  /** Whether subscriptions outlive a redeploy (persistent session). */
  persistentSession: boolean;
}

/** The subset of a Node-RED tls-config node used here. */
interface TlsConfigNode extends Node {
  addTLSOptions(options: Record<string, unknown>): void;
}

/** Short address shown in logs and labels, never with credentials. */
function describeEndpoint(endpoint: Endpoint): string {
  return endpoint.transport === 'embedded'
    ? `embedded:${endpoint.brokerId}`
    : `${endpoint.transport}://${endpoint.host}:${endpoint.port}${endpoint.path ?? ''}`;
}

module.exports = function (RED: NodeAPI) {
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
        RED._('durable-mqtt.errors.invalid-lifecycle-topic', {
          kind: RED._(`durable-mqtt.lifecycle.${kind}`),
          topic,
          reason: RED._(`durable-mqtt.topic-problem.${problem}`),
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

  function BrokerConfig(this: BrokerConfigNode, def: BrokerConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const transport: Transport = TRANSPORTS.includes(def.transport)
      ? def.transport
      : def.embedded
        ? 'embedded'
        : 'mqtt';
    let protocolVersion: 4 | 5 = readNumber(def.protocolVersion, 4) === 5 ? 5 : 4;
    let endpoint: Endpoint;
    if (transport === 'embedded') {
      endpoint = { transport, brokerId: def.embedded };
      if (protocolVersion === 5) {
        node.warn(RED._('durable-mqtt.errors.embedded-mqtt5'));
        protocolVersion = 4;
      }
    } else {
      endpoint = {
        transport,
        host: readString(def.host, 'localhost').trim() || 'localhost',
        port: readNumber(def.port, DEFAULT_PORTS[transport]),
      };
      if (transport === 'ws' || transport === 'wss') endpoint.path = readString(def.path).trim() || '/mqtt';
    }
    const cleanSession = readBoolean(def.cleanSession, true);
    let clientId = readString(def.clientId).trim();
    if (!clientId) {
      // 21 characters: within the 23 that every MQTT 3.1.1 broker must accept.
      clientId = `durable-mqtt-${randomBytes(4).toString('hex')}`;
      if (!cleanSession) node.warn(RED._('durable-mqtt.errors.no-client-id'));
    }
    const options: ConnectionOptions = {
      endpoint,
      clientId,
      protocolVersion,
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
    if (transport === 'mqtts' || transport === 'wss') {
      const tls: Record<string, unknown> = { rejectUnauthorized: true };
      const tlsNode = def.tls ? (RED.nodes.getNode(def.tls) as TlsConfigNode | null) : null;
      tlsNode?.addTLSOptions(tls);
      options.tls = tls as unknown as TlsOptions;
    }

    // MQTT 5 ends a session with expiry 0 when the connection closes: not persistent, whatever cleanSession says.
    node.persistentSession = !cleanSession && (protocolVersion === 4 || sessionExpiry > 0);
    if (!cleanSession && !node.persistentSession) node.warn(RED._('durable-mqtt.errors.session-expiry-zero'));
    node.connection = new BrokerConnection(options);
    const address = describeEndpoint(endpoint);
    let lastLoggedReason = '';
    node.connection.on('status', (status) => {
      if (status.state === 'connected') {
        lastLoggedReason = '';
        node.log(RED._('durable-mqtt.log.connected', { broker: address }));
      } else if (status.state === 'disconnected' && status.reason) {
        // A broker that keeps refusing would flood the log at every retry: say each reason once.
        const reason = describeReason(RED, status.reason);
        if (reason === lastLoggedReason) return;
        lastLoggedReason = reason;
        const text = RED._('durable-mqtt.log.disconnected', { broker: address, reason });
        if (status.reason.code === 'lost') node.log(text);
        else node.error(text);
      }
    });
    node.connection.on('shared-overlap', (filter, other) => {
      node.warn(RED._('durable-mqtt.errors.shared-overlap', { topic: filter, other }));
    });
    node.connection.on('shared-unsupported', (filter) => {
      node.warn(RED._('durable-mqtt.errors.shared-unsupported', { topic: filter }));
    });
    node.connection.on('subscription-given-up', (filter, released) => {
      node.warn(RED._('durable-mqtt.errors.subscription-given-up', { topic: filter, count: released }));
    });
    node.connection.on('subscribe-failure', (failure) => {
      node.error(
        RED._('durable-mqtt.errors.subscribe-refused', { topic: failure.filter, code: failure.returnCode }),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
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
};
