import assert from 'node:assert/strict';
import { after, describe, it } from 'mocha';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EmbeddedBroker } from '../nodes/lib/broker/aedes/embedded-broker.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';
import { OPEN_BROKER } from './support/embedded-broker.js';

const TOTAL = 20_000;

/** Publishes 1..TOTAL at QoS 1 as fast as the client takes them; resolves with the numbers acknowledged. */
async function publishNumbers(client: MqttClient, topic: string): Promise<number> {
  let acknowledged = 0;
  for (let n = 1; n <= TOTAL; n++) {
    client.publish(topic, String(n), { qos: 1 }, (error) => {
      if (!error) acknowledged++;
    });
    // Bursts of 50, so that many publishes are parsed from one TCP read, as under load.
    if (n % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor(() => acknowledged === TOTAL, 'every PUBACK', 60_000);
  return acknowledged;
}

for (const persistence of ['disk', 'memory'] as const) {
  describe(`the embedded broker with ${persistence} persistence`, () => {
    let broker: EmbeddedBroker;
    const clients: MqttClient[] = [];
    const connect = async (options: mqtt.IClientOptions) => {
      const client = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: broker.listeningAddress!.port,
        ...options,
      });
      clients.push(client);
      return client;
    };

    after(async () => {
      for (const client of clients) await client.endAsync(true);
      await broker?.close();
    });

    it(`delivers every one of ${TOTAL} QoS 1 messages to a persistent session, once per message`, async () => {
      broker = new EmbeddedBroker({
        ...OPEN_BROKER,
        port: await freePort(),
        bind: '127.0.0.1',
        // No bound: this subscriber stays connected, and the test counts every message.
        maxOfflineMessages: 0,
        persistenceDirectory:
          persistence === 'disk' ? path.join(temporaryDirectory('durable-mqtt-aedes-'), 'broker') : undefined,
      });
      await broker.start();
      const counts = new Map<number, number>();
      const subscriber = await connect({ clientId: 'persistent-subscriber', clean: false });
      subscriber.on('message', (_topic, payload) => {
        const n = Number(payload.toString());
        counts.set(n, (counts.get(n) ?? 0) + 1);
      });
      // Overlapping filters: the broker still sends one copy of each message to this client.
      await subscriber.subscribeAsync({ 'numbers/#': { qos: 1 }, 'numbers/+': { qos: 1 } });
      const publisher = await connect({ clientId: 'publisher' });
      await publishNumbers(publisher, 'numbers/all');
      await waitFor(() => counts.size === TOTAL, `${TOTAL} distinct messages`, 30_000).catch(() => undefined);
      const missing = Array.from({ length: TOTAL }, (_, i) => i + 1).filter((n) => !counts.has(n));
      const copies = [...counts.values()].filter((count) => count > 1).length;
      console.log(
        `  ${persistence}: delivered ${counts.size} of ${TOTAL}, missing ${missing.length}, sent twice ${copies}`,
      );
      assert.deepEqual(missing.slice(0, 10), [], 'acknowledged messages never delivered');
      assert.equal(copies, 0, 'messages delivered twice to one client');
    });

    it('delivers QoS 0, 1 and 2 messages to QoS 0, 1 and 2 subscriptions', async () => {
      for (const subscribed of [0, 1, 2] as const) {
        const received: string[] = [];
        const subscriber = await connect({ clientId: `mixed-${subscribed}`, clean: subscribed !== 1 });
        subscriber.on('message', (_topic, payload) => received.push(payload.toString()));
        await subscriber.subscribeAsync(`mixed/${subscribed}`, { qos: subscribed });
        const publisher = await connect({});
        for (const qos of [0, 1, 2] as const)
          await publisher.publishAsync(`mixed/${subscribed}`, `qos ${qos}`, { qos });
        await waitFor(() => received.length === 3, `three messages at subscription QoS ${subscribed}`).catch(
          () => undefined,
        );
        assert.deepEqual(received.sort(), ['qos 0', 'qos 1', 'qos 2'], `subscription QoS ${subscribed}`);
      }
    });
  });
}
