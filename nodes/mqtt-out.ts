import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { IClientPublishOptions } from 'mqtt';
import type { BrokerConfigNode } from './broker-config.js';
import { ConnectionError, type ConnectionStatus, type QoS } from './lib/connection.js';
import { publishTopicProblem } from './lib/topic.js';
import { PayloadError, encodePayload } from './lib/payload.js';
import { readBoolean, readQos, readString } from './shared/config-values.js';
import { connectionNodeStatus } from './shared/status.js';

type Persistence = 'none' | 'queued' | 'acknowledged';
/** Modes this version implements; the others are refused at deploy rather than silently downgraded. */
const IMPLEMENTED_PERSISTENCE: readonly Persistence[] = ['none'];

interface MqttOutDef extends NodeDef {
  broker: string;
  topic: string;
  /** '' lets msg.qos decide. */
  qos: string | number;
  /** '' lets msg.retain decide. */
  retain: string | boolean;
  persistence: Persistence;
}

interface OutMessage extends Omit<NodeMessageInFlow, 'topic'> {
  topic?: unknown;
  qos?: unknown;
  retain?: unknown;
  responseTopic?: unknown;
  correlationData?: unknown;
  contentType?: unknown;
  userProperties?: unknown;
  messageExpiryInterval?: unknown;
}

/** An input problem, with the msg left untouched so a Catch node can inspect it. */
class InputError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

module.exports = function (RED: NodeAPI) {
  /** MQTT 5 publish properties from msg, validated; only sent on an MQTT 5 connection. */
  function publishProperties(msg: OutMessage): IClientPublishOptions['properties'] {
    const properties: NonNullable<IClientPublishOptions['properties']> = {};
    const fail = (name: string) => {
      throw new InputError('invalid-property', RED._('durable-mqtt.errors.invalid-property', { name }));
    };
    if (msg.responseTopic !== undefined) {
      if (typeof msg.responseTopic !== 'string' || publishTopicProblem(msg.responseTopic))
        fail('responseTopic');
      properties.responseTopic = msg.responseTopic as string;
    }
    if (msg.correlationData !== undefined) {
      if (!Buffer.isBuffer(msg.correlationData) && typeof msg.correlationData !== 'string')
        fail('correlationData');
      properties.correlationData = Buffer.from(msg.correlationData as Buffer | string);
    }
    if (msg.contentType !== undefined) {
      if (typeof msg.contentType !== 'string') fail('contentType');
      properties.contentType = msg.contentType as string;
    }
    if (msg.messageExpiryInterval !== undefined) {
      const seconds = Number(msg.messageExpiryInterval);
      if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffffffff) fail('messageExpiryInterval');
      properties.messageExpiryInterval = seconds;
    }
    if (msg.userProperties !== undefined) {
      const value = msg.userProperties;
      if (!value || typeof value !== 'object' || Array.isArray(value)) fail('userProperties');
      const userProperties: Record<string, string | string[]> = {};
      for (const [key, item] of Object.entries(value as object)) {
        userProperties[key] = Array.isArray(item) ? item.map(String) : String(item);
      }
      properties.userProperties = userProperties;
    }
    return Object.keys(properties).length ? properties : undefined;
  }

  function MqttOut(this: Node, def: MqttOutDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const brokerNode = RED.nodes.getNode(def.broker) as BrokerConfigNode | null;
    const nodeTopic = readString(def.topic).trim();
    const nodeQos = readQos(def.qos);
    const nodeRetain =
      def.retain === '' || def.retain === undefined ? undefined : readBoolean(def.retain, false);
    const persistence: Persistence = def.persistence || 'none';
    let dropped = 0;

    const failAll = (text: string) => {
      node.status({ fill: 'red', shape: 'ring', text });
      node.error(text);
      node.on('input', (_msg: NodeMessageInFlow, _send, done) => done(new Error(text)));
    };
    if (!brokerNode?.connection) return failAll(RED._('durable-mqtt.errors.no-broker'));
    if (!IMPLEMENTED_PERSISTENCE.includes(persistence)) {
      return failAll(RED._('durable-mqtt.errors.persistence-unavailable', { mode: persistence }));
    }
    const connection = brokerNode.connection;
    const isV5 = connection.options.protocolVersion === 5;

    const showStatus = (status: ConnectionStatus) =>
      node.status(
        connectionNodeStatus(
          RED,
          status,
          dropped ? RED._('durable-mqtt.status.dropped', { count: dropped }) : undefined,
        ),
      );
    connection.on('status', showStatus);
    connection.register(node);
    showStatus(connection.status);

    /** Topic, QoS, retain and properties for a msg; throws InputError when one is invalid. */
    function publishTarget(msg: OutMessage): { topic: string; options: IClientPublishOptions } {
      const topic = nodeTopic || msg.topic;
      const problem = publishTopicProblem(topic);
      if (problem) {
        throw new InputError(
          'invalid-topic',
          RED._('durable-mqtt.errors.invalid-topic', {
            topic: String(topic),
            reason: RED._(`durable-mqtt.topic-problem.${problem}`),
          }),
        );
      }
      const qos = nodeQos ?? (msg.qos === undefined ? 0 : readQos(msg.qos));
      if (qos === undefined)
        throw new InputError(
          'invalid-qos',
          RED._('durable-mqtt.errors.invalid-qos', { qos: String(msg.qos) }),
        );
      let retain = nodeRetain;
      if (retain === undefined) {
        if (msg.retain === undefined) retain = false;
        else if (msg.retain === true || msg.retain === 'true') retain = true;
        else if (msg.retain === false || msg.retain === 'false') retain = false;
        else
          throw new InputError(
            'invalid-retain',
            RED._('durable-mqtt.errors.invalid-retain', { retain: String(msg.retain) }),
          );
      }
      const options: IClientPublishOptions = { qos: qos as QoS, retain };
      const properties = publishProperties(msg);
      if (properties && isV5) options.properties = properties;
      return { topic: topic as string, options };
    }

    node.on('input', (incoming: NodeMessageInFlow, _send, done) => {
      const msg = incoming as OutMessage;
      let target: { topic: string; options: IClientPublishOptions };
      let payload: Buffer | string;
      try {
        target = publishTarget(msg);
        payload = encodePayload(msg.payload);
      } catch (error) {
        if (error instanceof InputError || error instanceof PayloadError) return done(error);
        throw error;
      }
      connection.publish(target.topic, payload, target.options, (error) => {
        if (!error) return done();
        if (error instanceof ConnectionError && error.code === 'not-connected') {
          dropped++;
          showStatus(connection.status);
          return done(
            new ConnectionError(
              'not-connected',
              RED._('durable-mqtt.errors.dropped-not-connected', { topic: target.topic }),
            ),
          );
        }
        done(error);
      });
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      connection.off('status', showStatus);
      connection.deregister(node).then(done, done);
    });
  }

  RED.nodes.registerType('durable-mqtt-out', MqttOut);
};
