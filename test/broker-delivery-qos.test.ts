/**
 * The QoS at which the embedded broker delivers a message: the lower of the publication's and the
 * subscription's granted QoS, a wildcard filter's as much as an exact one's, live and from a
 * persistent session's queue; with overlapping filters one copy at the highest QoS granted among
 * them. MQTT.js 3.1.1 and 5 clients over real TCP; each case names its statement of the OASIS
 * MQTT 3.1.1 specification ([MQTT-x.y.z-n]) and, where it differs, of MQTT 5.0.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { connectWhenListening } from './support/embedded-broker.js';
import { embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

type QoS = 0 | 1 | 2;

/** Each message a client gets, as [topic, QoS it came at]. */
function collectQoS(client: mqtt.MqttClient): [string, number][] {
  const received: [string, number][] = [];
  client.on('message', (topic, _payload, packet) => received.push([topic, packet.qos]));
  return received;
}

describe('embedded broker: the QoS of a delivered message', () => {
  let port: number;
  before(async () => {
    await helper.startServer();
    port = await freePort();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  const clients: mqtt.MqttClient[] = [];
  async function client(protocolVersion: 4 | 5, options: mqtt.IClientOptions = {}) {
    const connected = await connectWhenListening(port, { protocolVersion, ...options });
    clients.push(connected);
    return connected;
  }
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  async function publishEach(publisher: mqtt.MqttClient, topic: string): Promise<void> {
    for (const qos of [0, 1, 2] as const) await publisher.publishAsync(topic, `at ${qos}`, { qos });
  }

  for (const protocolVersion of [4, 5] as const) {
    const version = protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';

    it(`[MQTT-3.8.4-8] (MQTT 5: 3.8.4) delivers at min(publication QoS, granted QoS) through a wildcard filter (${version})`, async () => {
      await helper.load(allNodes, [embeddedBrokerNode(port)]);
      const publisher = await client(protocolVersion, { clientId: 'publisher' });
      const received: Record<QoS, [string, number][]> = { 0: [], 1: [], 2: [] };
      for (const granted of [0, 1, 2] as const) {
        const subscriber = await client(protocolVersion, { clientId: `sub-${granted}` });
        received[granted] = collectQoS(subscriber);
        await subscriber.subscribeAsync('wild/#', { qos: granted });
      }
      await publishEach(publisher, 'wild/b');
      await waitFor(() => [0, 1, 2].every((g) => received[g as QoS].length === 3), 'three messages each');
      for (const granted of [0, 1, 2] as const)
        assert.deepEqual(
          received[granted].map(([, qos]) => qos),
          [0, Math.min(1, granted), Math.min(2, granted)],
          `subscriber granted QoS ${granted}`,
        );
    });

    it(`[MQTT-3.8.4-8] caps a persistent session's queued messages at its wildcard filter's granted QoS (${version})`, async () => {
      await helper.load(allNodes, [embeddedBrokerNode(port)]);
      const session = {
        clientId: 'away',
        clean: false,
        ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}),
      };
      const first = await client(protocolVersion, session);
      await first.subscribeAsync('queued/+', { qos: 1 });
      await first.endAsync();
      const publisher = await client(protocolVersion, { clientId: 'publisher' });
      await publisher.publishAsync('queued/b', 'while away', { qos: 2 });
      // Listening before the CONNACK: the queue follows it at once.
      const back = mqtt.connect({ host: '127.0.0.1', port, protocolVersion, reconnectPeriod: 0, ...session });
      clients.push(back);
      const received = collectQoS(back);
      await waitFor(() => received.length === 1, 'the queued message');
      assert.deepEqual(received, [['queued/b', 1]]);
    });

    it(`[MQTT-3.3.5-1] (MQTT 5: [MQTT-3.3.4-2]) with overlapping filters sends one copy at the highest QoS they grant (${version})`, async () => {
      await helper.load(allNodes, [embeddedBrokerNode(port)]);
      const publisher = await client(protocolVersion, { clientId: 'publisher' });
      const subscriber = await client(protocolVersion, { clientId: 'overlapping' });
      const received = collectQoS(subscriber);
      // The QoS 0 filter first: the bus hands the message through it before the QoS 2 one.
      await subscriber.subscribeAsync('over/#', { qos: 0 });
      await subscriber.subscribeAsync('over/+', { qos: 1 });
      await publishEach(publisher, 'over/b');
      await waitFor(() => received.length >= 3, 'three messages');
      await delay(200);
      assert.deepEqual(received, [
        ['over/b', 0],
        ['over/b', 1],
        ['over/b', 1],
      ]);
    });
  }
});
