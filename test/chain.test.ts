import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { NodeRedRig, NumberedSubscriber, waitFor } from './support/crash-rig.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay } from './support/wait.js';

const TOTAL = 5000;

/** Runtime A: chain/in (persistent session, ack once the flow is done) → chain/out (acknowledged delivery). */
function relayFlow(brokerPort: number): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'relay' },
    {
      id: 'cfg1',
      type: 'durable-mqtt-broker-config',
      transport: 'mqtt',
      host: '127.0.0.1',
      port: brokerPort,
      protocolVersion: 4,
      clientId: 'durable-chain-relay',
      keepalive: 10,
      cleanSession: false,
      birthTopic: 'chain/relay/up',
      birthPayload: 'up',
      birthQos: '1',
    },
    {
      id: 'in1',
      type: 'durable-mqtt-in',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/in',
      qos: 1,
      datatype: 'buffer',
      ack: 'complete',
      ackTimeout: 60,
      wires: [['out1']],
    },
    {
      id: 'out1',
      type: 'durable-mqtt-out',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/out',
      qos: '1',
      retain: 'false',
      persistence: 'acknowledged',
      outputs: 1,
      wires: [[]],
    },
  ];
}

describe('a relay that crashes', { skip: skipUnlessInstalled('mosquitto', mosquittoBinary) }, () => {
  // Unlimited queues: while the relay is down, Mosquitto keeps everything for its persistent session.
  const broker = new Mosquitto({ persistence: true, unlimitedQueues: true });
  const subscriber = new NumberedSubscriber();
  let publisher: MqttClient | undefined;
  let rig: NodeRedRig | undefined;

  before(async () => {
    await broker.start();
    await subscriber.connect(broker.port, 'chain/out', {
      clientId: 'durable-chain-subscriber',
      clean: false,
    });
  });
  after(async () => {
    await rig?.stop().catch(() => rig?.process?.kill());
    await publisher?.endAsync(true);
    await subscriber.close();
    await broker.dispose();
  });

  it(`passes on every one of ${TOTAL} messages while the relay is SIGKILLed repeatedly (0 missing)`, async () => {
    rig = new NodeRedRig(relayFlow(broker.port));
    const up = await mqtt.connectAsync({ host: '127.0.0.1', port: broker.port, protocolVersion: 4 });
    let births = 0;
    up.on('message', () => births++);
    await up.subscribeAsync('chain/relay/up', { qos: 1 });
    await rig.start();
    // The relay's session exists (and holds its subscription) once it has said it is up.
    await waitFor(() => births > 0, 'the relay to connect', 30_000);
    await delay(300);
    await up.endAsync();

    publisher = await mqtt.connectAsync({ host: '127.0.0.1', port: broker.port, protocolVersion: 4 });
    const accepted = new Set<number>();
    // The relay works through what Mosquitto queued for it long after the publisher is done:
    // the kills go on until everything has come through, or four kills.
    const relaying = () => subscriber.count('chain/out', accepted).delivered < TOTAL;
    const crashes = (async () => {
      let kills = 0;
      while (kills < 4) {
        await delay(800 + Math.random() * 1500);
        if (!relaying()) break;
        await rig.crash();
        kills++;
        await delay(Math.random() * 1000);
        await rig.start();
      }
      return kills;
    })();
    const client = publisher;
    let next = 1;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next <= TOTAL) {
          const n = next++;
          await client.publishAsync('chain/in', JSON.stringify({ n }), { qos: 1 });
          accepted.add(n);
          await delay(10);
        }
      }),
    );
    const kills = await crashes;
    await waitFor(
      () => subscriber.count('chain/out', accepted).missing.length === 0,
      'every message through the relay',
      120_000,
    ).catch(() => undefined);
    const count = subscriber.count('chain/out', accepted);
    console.log(
      `\nrelay SIGKILLed ${kills} times: published ${count.accepted}  unique ids delivered ${count.delivered}  missing ${count.missing.length}  duplicates ${count.duplicates}`,
    );
    assert.ok(kills >= 1, 'the relay was killed at least once');
    assert.deepEqual(count.missing.slice(0, 10), [], 'ids that never came through');
  });
});
