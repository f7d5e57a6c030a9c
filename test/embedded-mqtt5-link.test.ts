/**
 * A broker config with protocol MQTT 5 on the embedded broker of this Node-RED: over TCP, and on the
 * embedded transport (MQTT over an in-process stream, clean or persistent session), MQTT 5
 * publication properties go both ways between the flow and network MQTT 5 clients, unaltered.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import { connectWhenListening } from './support/embedded-broker.js';
import {
  EMBEDDED_BROKER_ID,
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { allNodes, collect, helper, watchLog } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

const CONFIG = 'c0000000000000051';

/** What MQTT.js hands over of a received PUBLISH: its topic, payload and properties. */
interface NetworkMessage {
  topic: string;
  payload: string;
  properties: mqtt.IPublishPacket['properties'];
}

const PROPERTIES = {
  responseTopic: 'reply/to/me',
  correlationData: Buffer.from([0xde, 0xad, 0x00, 0x01]),
  contentType: 'application/json',
  userProperties: { zeta: 'first', alpha: ['two', 'three'], mid: 'four' },
  messageExpiryInterval: 3600,
};

const LINKS = [
  { name: 'over TCP', endpoint: (port: number) => ({ port, protocolVersion: 5 }), cleanSession: true },
  {
    name: 'on the embedded transport, clean session',
    endpoint: () => ({ protocolVersion: 5 }),
    cleanSession: true,
  },
  {
    name: 'on the embedded transport, persistent session',
    endpoint: () => ({ protocolVersion: 5, sessionExpiry: 300 }),
    cleanSession: false,
  },
];

/** The broker config of `link` to the embedded broker listening on `port`. */
function linkConfig(link: (typeof LINKS)[number], port: number, clientId: string) {
  return brokerConfigNode({
    id: CONFIG,
    clientId,
    embedded: EMBEDDED_BROKER_ID,
    cleanSession: link.cleanSession,
    ...link.endpoint(port),
  });
}

describe('broker configs with MQTT 5 on the embedded broker', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  for (const link of LINKS) {
    it(`[MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] connects and carries MQTT 5 properties both ways, ${link.name}`, async () => {
      const port = await freePort();
      await helper.load(allNodes, [
        embeddedBrokerNode(port),
        linkConfig(link, port, 'flow-v5'),
        mqttOutNode({ id: 'out1', broker: CONFIG, topic: 'from-flow/a', qos: '1' }),
        mqttInNode({
          id: 'in1',
          broker: CONFIG,
          topic: 'to-flow/#',
          qos: '1',
          datatype: 'utf8',
          wires: [['sink']],
        }),
        helperNode('sink'),
      ]);
      const warnings = watchLog(helper.getNode(CONFIG), 'warn');
      const network = await connectWhenListening(port, { protocolVersion: 5, clientId: 'network-v5' });
      try {
        const atNetwork: NetworkMessage[] = [];
        network.on('message', (topic, payload, packet) =>
          atNetwork.push({ topic, payload: payload.toString(), properties: packet.properties }),
        );
        await network.subscribeAsync('from-flow/#', { qos: 1 });
        const config = helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } };
        await waitFor(() => config.connection.connected, 'the broker config to connect');
        const received = collect(helper.getNode('sink'));
        // Until the in node's subscription is at the broker, a message to it would be lost: published until one arrives.
        await waitFor(async () => {
          await network.publishAsync('to-flow/x', 'to the flow', { qos: 1, properties: PROPERTIES });
          return received.length > 0;
        }, 'a message at the in node');
        const msg = received[0];
        assert.equal(msg.payload, 'to the flow');
        assert.equal(msg.responseTopic, PROPERTIES.responseTopic);
        assert.deepEqual(msg.correlationData, PROPERTIES.correlationData);
        assert.equal(msg.contentType, PROPERTIES.contentType);
        assert.deepEqual({ ...(msg.userProperties as object) }, PROPERTIES.userProperties);
        assert.deepEqual(Object.keys(msg.userProperties as object), ['zeta', 'alpha', 'mid']);
        // [MQTT-3.3.2-6] What remains of the interval, never more.
        const remaining = msg.messageExpiryInterval as number;
        assert.ok(remaining > 3500 && remaining <= 3600, `message expiry ${remaining}`);

        helper.getNode('out1').receive({ payload: 'to the network', ...PROPERTIES });
        await waitFor(() => atNetwork.length === 1, 'the flow message at the network client');
        const properties = atNetwork[0].properties ?? {};
        assert.equal(properties.responseTopic, PROPERTIES.responseTopic);
        assert.deepEqual(properties.correlationData, PROPERTIES.correlationData);
        assert.equal(properties.contentType, PROPERTIES.contentType);
        assert.deepEqual({ ...properties.userProperties }, PROPERTIES.userProperties);
        assert.deepEqual(Object.keys(properties.userProperties ?? {}), ['zeta', 'alpha', 'mid']);
        const expiry = properties.messageExpiryInterval ?? 0;
        assert.ok(expiry > 3500 && expiry <= 3600, `message expiry ${expiry}`);
        assert.deepEqual(warnings, [], 'no downgrade to MQTT 3.1.1');
      } finally {
        await network.endAsync(true);
      }
    });
  }

  for (const link of LINKS) {
    it(`[MQTT-3.3.4-3] gives a message to every in node whose filter it matches, when their filters overlap, ${link.name}`, async () => {
      const port = await freePort();
      const inNode = (id: string, topic: string) =>
        mqttInNode({ id, broker: CONFIG, topic, qos: '1', datatype: 'utf8', wires: [[`${id}-sink`]] });
      await helper.load(allNodes, [
        embeddedBrokerNode(port),
        linkConfig(link, port, 'overlapping-v5'),
        mqttOutNode({ id: 'out1', broker: CONFIG, topic: '', qos: '1' }),
        inNode('all', 'plant/#'),
        inNode('one', 'plant/temp'),
        inNode('level', 'plant/+'),
        helperNode('all-sink'),
        helperNode('one-sink'),
        helperNode('level-sink'),
      ]);
      const config = helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } };
      await waitFor(() => config.connection.connected, 'the broker config to connect');
      const sinks = ['all', 'one', 'level'].map((id) => collect(helper.getNode(`${id}-sink`)));
      // Until every subscription is at the broker a message may miss one: published until each has one.
      await waitFor(() => {
        helper.getNode('out1').receive({ topic: 'plant/temp', payload: 'probe' });
        return sinks.every((sink) => sink.length > 0);
      }, 'a probe at every in node');
      for (let i = 0; i < 20; i++)
        helper.getNode('out1').receive({ topic: 'plant/temp', payload: String(i) });
      helper.getNode('out1').receive({ topic: 'plant/line/1', payload: 'deep' });
      // Probes still on their way may come after: only the numbered messages count.
      const payloads = (sink: { payload?: unknown }[]) =>
        sink.map((msg) => msg.payload).filter((payload) => payload !== 'probe');
      await waitFor(() => payloads(sinks[0]).length === 21, 'every message at plant/#');
      await waitFor(
        () => payloads(sinks[1]).length === 20 && payloads(sinks[2]).length === 20,
        'plant/temp at the other two',
      );
      await delay(100);
      const twenty = Array.from({ length: 20 }, (_, i) => String(i));
      assert.deepEqual(payloads(sinks[0]), [...twenty, 'deep']);
      assert.deepEqual(payloads(sinks[1]), twenty);
      assert.deepEqual(payloads(sinks[2]), twenty);
    });
  }
});
