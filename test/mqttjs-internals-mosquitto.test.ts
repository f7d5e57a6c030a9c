import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'mocha';
import type { MqttClient, Packet } from 'mqtt';
import { allNodes, collect, completionObservers, helper } from './support/node-red.js';
import { Mosquitto, mosquittoBinary, observeBroker, type Observed } from './support/mosquitto.js';
import { skipUnlessInstalled } from './support/services.js';
import { brokerConfigNode, mqttOutNode } from './support/flows.js';
import { waitFor } from './support/wait.js';

const CONFIG = 'c0000000000000003';

interface ConnectionInternals {
  connected: boolean;
  transport: { client: MqttClient };
}

const clientOf = () =>
  (helper.getNode(CONFIG) as unknown as { connection: ConnectionInternals }).connection.transport.client;

/** MQTT.js's outgoing store, where a QoS 1/2 PUBLISH waits for its acknowledgment. */
interface OutgoingStore {
  _inflights: Map<number, { topic: string; payload: Buffer; properties?: { topicAlias?: number } }>;
}

/** Counts the socket's writes to the kernel, and the most bytes it held back at one of them. */
function countWrites(socket: Socket): { writes: number; mostBuffered: number } {
  const counts = { writes: 0, mostBuffered: 0 };
  const internal = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
  for (const method of ['_write', '_writev'] as const) {
    const original = internal[method].bind(socket);
    internal[method] = (...args: unknown[]) => {
      counts.writes++;
      counts.mostBuffered = Math.max(counts.mostBuffered, socket.writableLength);
      original(...args);
    };
  }
  return counts;
}

/** Hands `msg` to the out node as Node-RED does: from a setImmediate of its own. */
function deliver(msg: Record<string, unknown>) {
  setImmediate(() => helper.getNode('out1').receive(msg));
}

describe('MQTT.js patches of how packets reach the socket and the outgoing store, through Mosquitto', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  let broker: Mosquitto;
  let observer: MqttClient | undefined;

  before(async () => {
    broker = new Mosquitto({ unlimitedInflight: true, unlimitedQueues: true });
    await broker.start();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
    await broker?.dispose();
  });
  afterEach(async () => {
    await observer?.endAsync(true);
    observer = undefined;
    await helper.unload();
  });

  /** The broker config and an out node; with `observeCompletions`, a Complete and a Catch node on it. */
  async function start(
    protocolVersion: 4 | 5,
    extra: Record<string, unknown> = {},
    observeCompletions = false,
  ) {
    const flow = [
      brokerConfigNode({
        id: CONFIG,
        port: broker.port,
        protocolVersion,
        clientId: 'internals-test',
        ...extra,
      }),
      mqttOutNode({ id: 'out1', broker: CONFIG }),
      ...(observeCompletions ? completionObservers('out1') : []),
    ];
    await helper.load(allNodes, flow);
    await waitFor(() => clientOf()?.connected === true, 'connection to Mosquitto');
  }
  async function observe(filter: string, protocolVersion: 4 | 5): Promise<Observed[]> {
    const observing = await observeBroker(broker.port, filter, protocolVersion);
    observer = observing.client;
    return observing.seen;
  }

  it('sends the messages the out node gets in one event-loop turn in a few socket writes, not one each', async () => {
    await start(4);
    const seen = await observe('batch/#', 4);
    const counts = countWrites(clientOf().stream as Socket);
    // Node-RED hands each message to the out node from a setImmediate of its own.
    for (let i = 0; i < 100; i++) deliver({ topic: 'batch/one', payload: `m${i}`, qos: 0 });
    await waitFor(() => seen.length === 100, 'the 100 messages at the observer');
    assert.deepEqual(
      seen.map((m) => m.payload),
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
    assert.ok(counts.writes <= 5, `${counts.writes} socket writes for 100 messages`);
  });

  it('sends a SUBSCRIBE at once, with the messages of the turn before it', async () => {
    await start(4);
    const seen = await observe('control/#', 4);
    const socket = clientOf().stream as Socket;
    const counts = countWrites(socket);
    const atSubscribe = new Promise<{ writes: number; left: number }>((resolve) => {
      deliver({ topic: 'control/one', payload: 'first', qos: 0 });
      // In the same turn, after the delivery: its PUBLISH is corked until the next turn.
      setImmediate(() => {
        const before = counts.writes;
        clientOf().subscribe('control/other');
        // mqtt-packet uncorks after each packet on the next tick, as without the batching.
        process.nextTick(() => resolve({ writes: counts.writes - before, left: socket.writableLength }));
      });
    });
    assert.deepEqual(await atSubscribe, { writes: 1, left: 0 });
    await waitFor(() => seen.length === 1, 'the message at the observer');
  });

  it('completes every QoS 0 message written past the socket high-water mark, through one drain listener', async () => {
    await start(4, {}, true);
    const seen = await observe('drain/#', 4);
    const completed = collect(helper.getNode('completed'));
    const socket = clientOf().stream as Socket;
    const counts = countWrites(socket);
    const drainListeners = socket.listenerCount('drain');
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    let mostDrainListeners = drainListeners;
    try {
      const payload = Buffer.alloc(4096, 7);
      for (let i = 0; i < 100; i++) deliver({ topic: 'drain/big', payload, qos: 0 });
      // After the 100 deliveries, in the same turn, while their writes wait for the next.
      setImmediate(() => (mostDrainListeners = socket.listenerCount('drain')));
      await waitFor(() => completed.length === 100 && seen.length === 100, 'completions and deliveries');
    } finally {
      process.off('warning', onWarning);
    }
    // The 400 KB were held back past the high-water mark (16 KB): the drain path was taken.
    assert.ok(
      counts.mostBuffered > socket.writableHighWaterMark,
      `at most ${counts.mostBuffered} bytes held`,
    );
    assert.ok(mostDrainListeners <= drainListeners + 1, `${mostDrainListeners} drain listeners`);
    assert.deepEqual(warnings, []);
  });

  it('stores a QoS 1 message for a resend with its topic name, not its alias, and its payload uncopied', async () => {
    await start(5, { topicAliases: true });
    const seen = await observe('store/#', 5);
    const client = clientOf();
    const store = client.outgoingStore as unknown as OutgoingStore;
    const checked: { aliasOnWire: boolean; topic: string; alias?: number; samePayload: boolean }[] = [];
    client.on('packetsend', (packet: Packet) => {
      if (packet.cmd !== 'publish') return;
      // MQTT.js stores the packet before it writes it.
      const stored = store._inflights.get(packet.messageId as number);
      assert.ok(stored, 'the PUBLISH is in the outgoing store');
      checked.push({
        aliasOnWire: packet.topic === '',
        topic: stored.topic,
        alias: stored.properties?.topicAlias,
        samePayload: stored.payload === packet.payload,
      });
    });
    const out = helper.getNode('out1');
    out.receive({ topic: 'store/one', payload: Buffer.from('first'), qos: 1 });
    out.receive({ topic: 'store/one', payload: Buffer.from('second'), qos: 1 });
    await waitFor(() => seen.length === 2, 'both messages at the observer');
    assert.deepEqual(
      seen.map((m) => [m.topic, m.payload]),
      [
        ['store/one', 'first'],
        ['store/one', 'second'],
      ],
    );
    // The second went out with the alias alone; the store kept the topic name for a resend.
    assert.deepEqual(checked, [
      { aliasOnWire: false, topic: 'store/one', alias: undefined, samePayload: true },
      { aliasOnWire: true, topic: 'store/one', alias: undefined, samePayload: true },
    ]);
  });
});
