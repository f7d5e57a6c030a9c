/**
 * The flows under test: the same shape for every variant. The embedded broker
 * node of this package is the broker for all of them; an out node publishes
 * what the harness gives it, an in node subscribed to the same topic feeds
 * the `bench-sink` node that counts.
 */
import type { Persistence, QoS, Variant } from './types.js';

export const TOPIC = 'bench/data';
export const BROKER_ID = 'bench-broker';
export const CONFIG_ID = 'bench-config';
export const OUT_ID = 'bench-out';
export const IN_ID = 'bench-in';
export const SINK_ID = 'bench-sink-node';
export const SINK_TYPE = 'bench-sink';

type FlowNode = Record<string, unknown>;

/** Our out node's persistence settings; core ignores them. */
export interface OutSettings {
  persistence?: Persistence;
  maxMessages?: number;
  maxBytes?: number;
}

/** Our out node: with persistence 'acknowledged' it has one output (receipts), wired to nothing here. */
function oursOut(tab: string, qos: QoS, settings: OutSettings): FlowNode {
  const persistence = settings.persistence ?? 'none';
  return {
    id: OUT_ID,
    z: tab,
    type: 'durable-mqtt-out',
    broker: CONFIG_ID,
    topic: TOPIC,
    qos: String(qos),
    retain: 'false',
    persistence,
    ...(settings.maxMessages !== undefined ? { maxMessages: String(settings.maxMessages) } : {}),
    ...(settings.maxBytes !== undefined ? { maxBytes: String(settings.maxBytes) } : {}),
    overflow: 'rejectNew',
    ...(persistence === 'acknowledged' ? { outputs: 1, wires: [[]] } : { wires: [] }),
  };
}

function place(flow: FlowNode[]): FlowNode[] {
  // Node-RED takes a node without a position for a config node.
  let x = 0;
  for (const node of flow) if (node.z) Object.assign(node, { x: (x += 150), y: 100 });
  return flow;
}

export function benchFlow(
  variant: Variant,
  qos: QoS,
  brokerPort: number,
  settings: OutSettings = {},
): FlowNode[] {
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
      oursOut(tab, qos, settings),
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
  return place(flow);
}

/**
 * An out node with an outbox and no broker: its config points at a TCP port where
 * nothing listens, so every message stays queued. No broker node, no in node; the
 * sink is there because the runtime waits for it.
 */
export function offlineFlow(qos: QoS, deadPort: number, settings: OutSettings): FlowNode[] {
  const tab = 'bench-tab';
  return place([
    { id: tab, type: 'tab', label: 'bench offline backlog' },
    {
      id: CONFIG_ID,
      type: 'durable-mqtt-broker-config',
      transport: 'mqtt',
      host: '127.0.0.1',
      port: String(deadPort),
      protocolVersion: '4',
      clientId: 'bench-ours-offline',
      keepalive: '60',
      cleanSession: true,
    },
    oursOut(tab, qos, settings),
    { id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] },
  ]);
}

export const DEDUPE_ID = 'bench-dedupe';

/** A dedupe node alone, key auto (no message id: a hash of topic and payload), first copies to the sink. */
export function dedupeFlow(maxEntries: number, persist: boolean): FlowNode[] {
  const tab = 'bench-tab';
  return place([
    { id: tab, type: 'tab', label: 'bench dedupe' },
    {
      id: DEDUPE_ID,
      z: tab,
      type: 'durable-mqtt-dedupe',
      key: 'auto',
      scope: 'global',
      window: 3600,
      maxEntries,
      persist,
      wires: [[SINK_ID], []],
    },
    { id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] },
  ]);
}

/** Whether the broker config node of `variant` has its connection up. */
export function isConnected(variant: Variant, configNode: unknown): boolean {
  if (!configNode) return false;
  if (variant === 'core') return (configNode as { connected?: boolean }).connected === true;
  return (configNode as { connection?: { connected?: boolean } }).connection?.connected === true;
}
