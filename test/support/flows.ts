/**
 * Flow builders, as Node-RED's core MQTT tests have theirs: each gives a node as a flow file holds it,
 * with the values most tests use; `properties` add the rest or override any (id and z included).
 */

/** A node of a flow: what a flow file holds for it. */
export interface FlowNode {
  id: string;
  type: string;
  [property: string]: unknown;
}

export const EMBEDDED_BROKER_ID = 'b0000000000000001';

/** An embedded broker node; `port` 0 means in-process only. */
export function embeddedBrokerNode(port = 0, properties: Record<string, unknown> = {}): FlowNode {
  return {
    id: EMBEDDED_BROKER_ID,
    type: 'durable-mqtt-embedded-broker',
    port,
    bind: '127.0.0.1',
    wsPath: '',
    ...properties,
  };
}

/**
 * A broker config node with the node's own defaults (keepalive 60 s, clean session). With a `port`,
 * a client of the MQTT broker on 127.0.0.1:`port` over MQTT 3.1.1; without one, of the embedded
 * broker node EMBEDDED_BROKER_ID (`embedded` names another).
 */
export function brokerConfigNode(
  properties: { id: string; clientId: string; port?: number } & Record<string, unknown>,
): FlowNode {
  const { port, ...rest } = properties;
  const endpoint =
    port === undefined
      ? { transport: 'embedded', embedded: EMBEDDED_BROKER_ID }
      : { transport: 'mqtt', host: '127.0.0.1', port, protocolVersion: 4 };
  return { type: 'durable-mqtt-broker-config', ...endpoint, keepalive: 60, cleanSession: true, ...rest };
}

/** An mqtt out node on the broker config `broker`: topic, QoS and retain from each msg, no persistence. */
export function mqttOutNode(properties: { id: string; broker: string } & Record<string, unknown>): FlowNode {
  return { type: 'durable-mqtt-out', topic: '', qos: '', retain: '', persistence: 'none', ...properties };
}

/** An mqtt in node on the broker config `broker`, subscribed to `topic` at QoS 1, the payload auto-detected. */
export function mqttInNode(
  properties: { id: string; broker: string; topic: string } & Record<string, unknown>,
): FlowNode {
  return { type: 'durable-mqtt-in', qos: 1, datatype: 'auto-detect', wires: [[]], ...properties };
}

/** A dedupe node: by message id (or topic and payload), across topics, for an hour, up to 1,000 keys in memory. */
export function dedupeNode(properties: { id: string } & Record<string, unknown>): FlowNode {
  return {
    type: 'durable-mqtt-dedupe',
    key: 'auto',
    property: '',
    scope: 'global',
    window: 3600,
    maxEntries: 1000,
    persist: false,
    wires: [[], []],
    ...properties,
  };
}

/** The test helper's node: what reaches it can be read with collect(). */
export function helperNode(id: string): FlowNode {
  return { id, type: 'helper' };
}

/**
 * The flow the outbox tests share, on an embedded broker `brokerId` without a TCP port: mqtt out
 * `out1` (topic q/t, QoS 1, queued; its receipts to `receipts`) and mqtt in `in1` (q/# at QoS 2, text,
 * to `received`), both on broker config `configId`. `out(extra)` changes the out node's settings;
 * `send(count, from)` gives out1 the payloads m<from>, m<from + 1>, …
 */
export function outboxFlow(brokerId: string, configId: string, clientId: string) {
  const out = (extra: Record<string, unknown> = {}) =>
    mqttOutNode({
      id: 'out1',
      broker: configId,
      topic: 'q/t',
      qos: '1',
      persistence: 'queued',
      wires: [['receipts']],
      ...extra,
    });
  return {
    broker: embeddedBrokerNode(0, { id: brokerId }),
    config: brokerConfigNode({ id: configId, embedded: brokerId, clientId }),
    out,
    inNode: mqttInNode({
      id: 'in1',
      broker: configId,
      topic: 'q/#',
      qos: 2,
      datatype: 'utf8',
      wires: [['received']],
    }),
    sinks: [helperNode('received'), helperNode('receipts')],
  };
}
