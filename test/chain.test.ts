import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { NodeRedRig, NumberedSubscriber, waitFor } from './support/crash-rig.js';
import { skipUnlessInstalled } from './support/services.js';
import { brokerConfigNode, dedupeNode, mqttInNode, mqttOutNode } from './support/flows.js';
import { delay } from './support/wait.js';
import { newMessageId, wrapEnvelope } from '../nodes/lib/end-to-end-id.js';

const TOTAL = 5000;

/**
 * Runtime A, the relay: chain/in (persistent session, ack once the flow is done) → chain/out
 * (acknowledged delivery), passing each message's id on (3.1.1 envelope in and out).
 */
function relayFlow(brokerPort: number): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'relay' },
    brokerConfigNode({
      id: 'cfg1',
      port: brokerPort,
      clientId: 'durable-chain-relay',
      keepalive: 10,
      cleanSession: false,
      birthTopic: 'chain/relay/up',
      birthPayload: 'up',
      birthQos: '1',
    }),
    mqttInNode({
      id: 'in1',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/in',
      datatype: 'buffer',
      ack: 'complete',
      ackTimeout: 60,
      unwrapEnvelope: true,
      wires: [['out1']],
    }),
    mqttOutNode({
      id: 'out1',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/out',
      qos: '1',
      retain: 'false',
      persistence: 'acknowledged',
      messageId: true,
      messageIdEnvelope: true,
      outputs: 1,
      wires: [[]],
    }),
  ];
}

/** Runtime B, the receiver (never killed): chain/out → dedupe by message id → chain/final. */
function receiverFlow(brokerPort: number): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'receiver' },
    brokerConfigNode({
      id: 'cfg1',
      port: brokerPort,
      clientId: 'durable-chain-receiver',
      keepalive: 10,
      cleanSession: false,
      birthTopic: 'chain/receiver/up',
      birthPayload: 'up',
      birthQos: '1',
    }),
    mqttInNode({
      id: 'in1',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/out',
      datatype: 'buffer',
      ack: 'complete',
      unwrapEnvelope: true,
      wires: [['dedupe1']],
    }),
    dedupeNode({ id: 'dedupe1', z: 'tab1', maxEntries: 20_000, persist: true, wires: [['out1'], []] }),
    mqttOutNode({
      id: 'out1',
      z: 'tab1',
      broker: 'cfg1',
      topic: 'chain/final',
      qos: '1',
      retain: 'false',
      persistence: 'acknowledged',
      outputs: 1,
      wires: [[]],
    }),
  ];
}

describe('a relay that crashes', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  // Unlimited queues: while the relay is down, Mosquitto keeps everything for its persistent session.
  const broker = new Mosquitto({ persistence: true, unlimitedQueues: true });
  const subscriber = new NumberedSubscriber();
  let publisher: MqttClient | undefined;
  let rig: NodeRedRig | undefined;
  let receiver: NodeRedRig | undefined;

  before(async () => {
    await broker.start();
    await subscriber.connect(broker.port, 'chain/+', {
      clientId: 'durable-chain-subscriber',
      clean: false,
    });
  });
  after(async () => {
    await rig?.stop().catch(() => rig?.process?.kill());
    await receiver?.stop().catch(() => receiver?.process?.kill());
    await publisher?.endAsync(true);
    await subscriber.close();
    await broker.dispose();
  });

  it(`passes on every one of ${TOTAL} messages while the relay is SIGKILLed repeatedly: 0 missing, and each exactly once past dedupe`, async () => {
    rig = new NodeRedRig(relayFlow(broker.port));
    receiver = new NodeRedRig(receiverFlow(broker.port));
    const up = await mqtt.connectAsync({ host: '127.0.0.1', port: broker.port, protocolVersion: 4 });
    const births = new Set<string>();
    up.on('message', (topic) => births.add(topic));
    await up.subscribeAsync('chain/+/up', { qos: 1 });
    await Promise.all([rig.start(), receiver.start()]);
    // Each session exists (and holds its subscription) once its runtime has said it is up.
    await waitFor(() => births.size === 2, 'the relay and the receiver to connect', 30_000);
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
          // As a durable mqtt out with message ids on MQTT 3.1.1 would send it.
          await client.publishAsync('chain/in', wrapEnvelope(newMessageId(), JSON.stringify({ n })), {
            qos: 1,
          });
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
    await waitFor(
      () => subscriber.count('chain/final', accepted).missing.length === 0,
      'every message through the receiver',
      60_000,
    ).catch(() => undefined);
    // Let copies still on their way arrive, so a duplicate past dedupe has its chance to show.
    await delay(1000);
    const count = subscriber.count('chain/out', accepted);
    const final = subscriber.count('chain/final', accepted);
    console.log(
      `\nrelay SIGKILLed ${kills} times: published ${count.accepted}  unique ids delivered ${count.delivered}  missing ${count.missing.length}  duplicates ${count.duplicates}` +
        `\npast dedupe: unique ids ${final.delivered}  missing ${final.missing.length}  duplicates ${final.duplicates}`,
    );
    assert.ok(kills >= 1, 'the relay was killed at least once');
    assert.deepEqual(count.missing.slice(0, 10), [], 'ids that never came through');
    assert.deepEqual(final.missing.slice(0, 10), [], 'ids that never came through the receiver');
    assert.equal(final.duplicates, 0, 'duplicates past dedupe');
  });
});
