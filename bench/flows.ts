/**
 * The flows under test: the same shape for every variant. The embedded broker
 * node of this package is the broker for all of them; an out node publishes
 * what the harness gives it, an in node subscribed to the same topic feeds
 * the `bench-sink` node that counts. The floor variant (Node-RED alone) has a
 * junction where the out node is, wired straight to the sink, and no broker.
 * The end-to-end flow (an out node with `until`) counts the out node's receipts
 * instead: its in node feeds a junction that finishes at once.
 */
import type { BrokerKind, Persistence, ProtocolVersion, QoS, Until, Variant } from './types.js';

export const TOPIC = 'bench/data';
export const BROKER_ID = 'bench-broker';
export const CONFIG_ID = 'bench-config';
export const OUT_ID = 'bench-out';
export const IN_ID = 'bench-in';
export const SINK_ID = 'bench-sink-node';
export const SINK_TYPE = 'bench-sink';
/** The end-to-end flow's consumer: a junction with no wires, so the in node's flow finishes at once. */
export const CONSUMER_ID = 'bench-consumer';
/** The in node's subscriber name, the `by` of its receipts. */
export const SUBSCRIBER_NAME = 'bench-consumer';

type FlowNode = Record<string, unknown>;

/** Our out node's persistence settings; core ignores them. */
export interface OutSettings {
  persistence?: Persistence;
  maxMessages?: number;
  maxBytes?: number;
  /** The end-to-end flow: persistence 'acknowledged' with this `until`, the receipts to the sink. */
  until?: Until;
}

/** What a flow of benchFlow is built with: our out node's settings and the broker config's MQTT version. */
export interface FlowSettings extends OutSettings {
  protocolVersion?: ProtocolVersion;
  /** 'mosquitto': the broker is a Mosquitto on `brokerPort` and the flow has no embedded broker node. */
  broker?: BrokerKind;
}

/**
 * Our out node: with persistence 'acknowledged' it has one output (receipts), wired to nothing
 * here, except in the end-to-end flow, where the receipts go to the sink.
 */
function oursOut(tab: string, qos: QoS, settings: OutSettings): FlowNode {
  const persistence = settings.until ? 'acknowledged' : (settings.persistence ?? 'none');
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
    ...(settings.until ? { until: settings.until } : {}),
    ...(persistence === 'acknowledged'
      ? { outputs: 1, wires: [settings.until ? [SINK_ID] : []] }
      : { wires: [] }),
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
  settings: FlowSettings = {},
): FlowNode[] {
  const tab = 'bench-tab';
  const flow: FlowNode[] = [{ id: tab, type: 'tab', label: `bench ${variant}` }];
  if (variant === 'floor') {
    // A core node whose input handler is send(msg); done(): Node-RED's own cost of a hop, nothing more.
    flow.push({ id: OUT_ID, z: tab, type: 'junction', wires: [[SINK_ID]] });
  } else flow.push(...mqttNodes(tab, variant, qos, brokerPort, settings));
  flow.push({ id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] });
  return place(flow);
}

/** This package's embedded broker node, on loopback, without WebSocket. */
function embeddedBroker(tab: string, brokerPort: number): FlowNode {
  return {
    id: BROKER_ID,
    z: tab,
    type: 'durable-mqtt-embedded-broker',
    port: brokerPort,
    bind: '127.0.0.1',
    wsPath: '',
  };
}

/**
 * The embedded broker node alone, for clients of another process (bench/clients.ts);
 * the sink is there because the runtime waits for it, and gets nothing.
 */
export function brokerFlow(brokerPort: number): FlowNode[] {
  const tab = 'bench-tab';
  return place([
    { id: tab, type: 'tab', label: 'bench external clients' },
    embeddedBroker(tab, brokerPort),
    { id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] },
  ]);
}

/** The sink alone: a runtime for the clients of another process when the broker is Mosquitto. */
export function sinkFlow(): FlowNode[] {
  const tab = 'bench-tab';
  return place([
    { id: tab, type: 'tab', label: 'bench external clients, Mosquitto' },
    { id: SINK_ID, z: tab, type: SINK_TYPE, wires: [] },
  ]);
}

/** The embedded broker, a broker config, an out node and an in node wired to the sink. */
function mqttNodes(
  tab: string,
  variant: Exclude<Variant, 'floor'>,
  qos: QoS,
  brokerPort: number,
  settings: FlowSettings,
): FlowNode[] {
  const flow: FlowNode[] = settings.broker === 'mosquitto' ? [] : [embeddedBroker(tab, brokerPort)];
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
        protocolVersion: String(settings.protocolVersion ?? 4),
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
        ...(settings.until
          ? {
              // Receipts once the flow has finished; on MQTT 3.1.1 the reply address is in the envelope.
              ack: 'complete',
              unwrapEnvelope: true,
              subscriberName: SUBSCRIBER_NAME,
              wires: [[CONSUMER_ID]],
            }
          : { wires: [[SINK_ID]] }),
      },
    );
    if (settings.until) flow.push({ id: CONSUMER_ID, z: tab, type: 'junction', wires: [] });
  }
  return flow;
}

/** Paths of the offline backlog flow's HTTP endpoints (under Node-RED's httpNodeRoot, `/`). */
export const BACKLOG_PATHS = {
  /** POST {messages, window, size}: starts filling. */
  start: '/bench/backlog/start',
  /** GET: counts so far, whether the out node ever showed connected, process.memoryUsage(). */
  progress: '/bench/backlog/progress',
  /** POST: gc() twice; says whether it could. */
  gc: '/bench/backlog/gc',
};

/**
 * The generator of the offline backlog, a function node: a POST to the start
 * endpoint sets the counts and sends the first window of messages; each message the
 * out node completes (Complete node) or fails (Catch node) comes back here, and
 * the window is refilled in batches, so at most `window` messages are between
 * this node and the out node's done(). Payloads are fresh random bytes: LevelDB
 * compresses its blocks, and repeated bytes would make the outbox look smaller.
 */
const GENERATOR = `
const BATCH = 1000;
function refill(state) {
  const outstanding = state.sent - state.queued - state.failed;
  const room = Math.min(state.window - outstanding, state.messages - state.sent);
  if (room <= 0 || room < Math.min(BATCH, state.messages - state.sent)) return null;
  const batch = [];
  for (let i = 0; i < room; i++) batch.push({ payload: crypto.randomBytes(state.size) });
  state.sent += room;
  return batch;
}
if (msg.req) {
  const state = {
    messages: msg.payload.messages,
    window: msg.payload.window,
    size: msg.payload.size,
    sent: 0,
    queued: 0,
    failed: 0,
    failures: [],
    startedAt: Date.now(),
    lastDoneAt: 0,
  };
  flow.set('backlog', state);
  const first = refill(state);
  msg.payload = { started: true };
  return [first, msg];
}
const state = flow.get('backlog');
if (!state) return null;
if (msg.error) {
  // An error of the node that is about no message of ours: it is in the log, not a completion.
  if (!Buffer.isBuffer(msg.payload)) return null;
  state.failed++;
  const text = String(msg.error.message);
  if (state.failures.length < 5 && !state.failures.includes(text)) state.failures.push(text);
} else state.queued++;
state.lastDoneAt = Date.now();
const more = refill(state);
return [more, null];
`;

/** Keeps whether the out node ever showed connected (green). */
const STATUS_RECORDER = `
const seen = flow.get('outStatus') || { connectedSeen: false };
if (msg.status.fill === 'green') seen.connectedSeen = true;
flow.set('outStatus', seen);
return null;
`;

const PROGRESS = `
msg.payload = {
  backlog: flow.get('backlog') || null,
  outStatus: flow.get('outStatus') || { connectedSeen: false },
  memory: global.get('memoryUsage')(),
};
return msg;
`;

const FORCE_GC = `
const gc = global.get('gc');
// Twice: the first pass leaves what finalizers free for the second.
if (gc) {
  gc();
  gc();
}
msg.payload = { gcForced: Boolean(gc) };
return msg;
`;

/** What the backlog flow's settings.js adds: gc and memoryUsage for its function nodes. */
export const BACKLOG_SETTINGS =
  'functionGlobalContext: { gc: global.gc, memoryUsage: () => process.memoryUsage() },';

/**
 * The offline backlog as a user would build it, for a plain Node-RED process: an
 * out node with an outbox whose broker config points at a TCP port where nothing
 * listens, fed by a function node that a Complete and a Catch node (scoped to the
 * out node) pace; http-in endpoints start it, report progress and force a gc.
 */
export function backlogFlow(qos: QoS, deadPort: number, settings: OutSettings): FlowNode[] {
  const tab = 'bench-tab';
  const generator = 'bench-generator';
  const response = 'bench-response';
  const endpoint = (id: string, method: string, url: string, func: string): FlowNode[] => [
    { id: `${id}-http`, z: tab, type: 'http in', url, method, upload: false, wires: [[id]] },
    { id, z: tab, type: 'function', func, outputs: 1, wires: [[response]] },
  ];
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
    {
      id: 'bench-start-http',
      z: tab,
      type: 'http in',
      url: BACKLOG_PATHS.start,
      method: 'post',
      upload: false,
      wires: [[generator]],
    },
    {
      id: generator,
      z: tab,
      type: 'function',
      func: GENERATOR,
      outputs: 2,
      libs: [{ var: 'crypto', module: 'crypto' }],
      wires: [[OUT_ID], [response]],
    },
    oursOut(tab, qos, settings),
    {
      id: 'bench-complete',
      z: tab,
      type: 'complete',
      scope: [OUT_ID],
      uncaught: false,
      wires: [[generator]],
    },
    { id: 'bench-catch', z: tab, type: 'catch', scope: [OUT_ID], uncaught: false, wires: [[generator]] },
    { id: 'bench-status', z: tab, type: 'status', scope: [OUT_ID], wires: [['bench-status-recorder']] },
    { id: 'bench-status-recorder', z: tab, type: 'function', func: STATUS_RECORDER, outputs: 0, wires: [] },
    ...endpoint('bench-progress', 'get', BACKLOG_PATHS.progress, PROGRESS),
    ...endpoint('bench-gc', 'post', BACKLOG_PATHS.gc, FORCE_GC),
    { id: response, z: tab, type: 'http response', statusCode: '', headers: {}, wires: [] },
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

/** Whether the broker config node of `variant` has its connection up; Node-RED alone has none to wait for. */
export function isConnected(variant: Variant, configNode: unknown): boolean {
  if (variant === 'floor') return true;
  if (!configNode) return false;
  if (variant === 'core') return (configNode as { connected?: boolean }).connected === true;
  return (configNode as { connection?: { connected?: boolean } }).connection?.connected === true;
}
