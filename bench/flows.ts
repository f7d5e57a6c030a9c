/**
 * The flows under test: the same shape for every variant. The embedded broker
 * node of this package is the broker for all of them; an out node publishes
 * what the harness gives it, an in node subscribed to the same topic feeds
 * the `bench-sink` node that counts.
 */
import type { QoS, Variant } from './types.js';

export const TOPIC = 'bench/data';
export const BROKER_ID = 'bench-broker';
export const CONFIG_ID = 'bench-config';
export const OUT_ID = 'bench-out';
export const IN_ID = 'bench-in';
export const SINK_ID = 'bench-sink-node';
export const SINK_TYPE = 'bench-sink';

type FlowNode = Record<string, unknown>;

export function benchFlow(variant: Variant, qos: QoS, brokerPort: number): FlowNode[] {
  const tab = 'bench-tab';
  const flow: FlowNode[] = [
    { id: tab, type: 'tab', label: `bench ${variant}` },
    {
      id: BROKER_ID,
      z: tab,
      type: 'durable-mqtt-embedded-broker',
      port: brokerPort,
      bind: '127.0.0.1',
      wsPath: '',
    },
  ];
  if (variant === 'core') {
    flow.push(
      {
        id: CONFIG_ID,
        type: 'mqtt-broker',
        broker: '127.0.0.1',
        port: String(brokerPort),
        clientid: 'bench-core',
        autoConnect: true,
        usetls: false,
        protocolVersion: '4',
        keepalive: '60',
        cleansession: true,
        autoUnsubscribe: true,
      },
      {
        id: OUT_ID,
        z: tab,
        type: 'mqtt out',
        broker: CONFIG_ID,
        topic: TOPIC,
        qos: String(qos),
        retain: 'false',
        wires: [],
      },
      {
        id: IN_ID,
        z: tab,
        type: 'mqtt in',
        broker: CONFIG_ID,
        topic: TOPIC,
        qos: String(qos),
        datatype: 'buffer',
        inputs: 0,
        wires: [[SINK_ID]],
      },
    );
  } else {
    const transport =
      variant === 'embedded'
        ? { transport: 'embedded', embedded: BROKER_ID }
        : { transport: 'mqtt', host: '127.0.0.1', port: String(brokerPort) };
    flow.push(
      {
        id: CONFIG_ID,
        type: 'durable-mqtt-broker-config',
        ...transport,
        protocolVersion: '4',
        clientId: `bench-ours-${variant}`,
        keepalive: '60',
        cleanSession: true,
      },
      {
        id: OUT_ID,
        z: tab,
        type: 'durable-mqtt-out',
        broker: CONFIG_ID,
        topic: TOPIC,
        qos: String(qos),
        retain: 'false',
        persistence: 'none',
        wires: [],
      },
      {
        id: IN_ID,
        z: tab,
        type: 'durable-mqtt-in',
        broker: CONFIG_ID,
        topic: TOPIC,
        qos,
        datatype: 'buffer',
        wires: [[SINK_ID]],
      },
    );
  }
  flow.push({ id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] });
  // Node-RED takes a node without a position for a config node.
  let x = 0;
  for (const node of flow) if (node.z) Object.assign(node, { x: (x += 150), y: 100 });
  return flow;
}

/** Whether the broker config node of `variant` has its connection up. */
export function isConnected(variant: Variant, configNode: unknown): boolean {
  if (!configNode) return false;
  if (variant === 'core') return (configNode as { connected?: boolean }).connected === true;
  return (configNode as { connection?: { connected?: boolean } }).connection?.connected === true;
}
