import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { skipUnlessInstalled } from './support/services.js';
import { BrokerConnection } from '../nodes/lib/connection/broker-connection.js';
import type { QoS, Subscriber } from '../nodes/lib/connection/types.js';
import { PARKING_GRACE } from '../nodes/lib/connection/parked-subscription.js';
import { delay, waitFor } from './support/wait.js';

/** A subscriber as an in node is one: records what it gets, optionally holding acknowledgments. */
function recordingSubscriber(holdsAcknowledgments = false): Subscriber & { received: string[] } {
  const received: string[] = [];
  return {
    received,
    holdsAcknowledgments,
    onMessage(_topic: string, payload: Buffer, _packet: IPublishPacket) {
      received.push(payload.toString());
    },
    onSubscribeFailure() {},
  };
}

// Against Mosquitto: Aedes 1.2 with the memory persistence sometimes never sends the PUBREL of a QoS 2
// message to a persistent session (seen with two bare MQTT.js clients), which would hide what this code does.
describe('a persistent session while an in node is redeployed', () => {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  const broker = new Mosquitto();
  let port: number;
  // Unset when the suite is skipped: the after hook still runs.
  let publisher: MqttClient | undefined;
  const connections: BrokerConnection[] = [];
  const open = async () => {
    const connection = new BrokerConnection({
      endpoint: { transport: 'mqtt', host: '127.0.0.1', port },
      clientId: `parking-${connections.length}`,
      protocolVersion: 4,
      keepalive: 30,
      cleanSession: false,
    });
    connections.push(connection);
    connection.register(connection);
    await waitFor(() => connection.connected, 'the connection');
    return connection;
  };
  const publishAll = async (topic: string, qos: QoS, count: number) => {
    for (let n = 1; n <= count; n++) await publisher!.publishAsync(topic, `${qos}:${n}`, { qos });
  };

  before(async () => {
    await broker.start();
    port = broker.port;
    publisher = await mqtt.connectAsync({ host: '127.0.0.1', port });
  });
  after(async () => {
    for (const connection of connections) await connection.close();
    await publisher?.endAsync();
    await broker.dispose();
  });

  it('hands the QoS 1 and 2 messages that arrive between close and restart to the restarted node, once each', async () => {
    const connection = await open();
    const before = recordingSubscriber();
    connection.subscribe('parking/#', 2, before, true);
    await waitFor(() => connection.brokerSubscriptions().has('parking/#'), 'the subscription');
    // The node closes for a redeploy: its subscription stays at the broker.
    connection.unsubscribe('parking/#', before, true);
    await publishAll('parking/a', 1, 3);
    await publishAll('parking/b', 2, 3);
    await publishAll('parking/c', 0, 1);
    // Everything published has reached the connection before the node comes back.
    await delay(300);
    const restarted = recordingSubscriber();
    connection.subscribe('parking/#', 2, restarted, true);
    await waitFor(() => restarted.received.length >= 6, 'the held messages');
    await delay(200);
    // QoS 0 is not held: it has no acknowledgment, and promises nothing.
    assert.deepEqual(restarted.received.sort(), ['1:1', '1:2', '1:3', '2:1', '2:2', '2:3']);
    assert.deepEqual(before.received, []);
  });

  it('gives a subscription up when no node takes it back within the grace period (its topic changed)', async () => {
    const connection = await open();
    const given: [string, number][] = [];
    connection.on('subscription-given-up', (filter, released) => given.push([filter, released]));
    const old = recordingSubscriber(true);
    connection.subscribe('renamed/#', 1, old, true);
    await waitFor(() => connection.brokerSubscriptions().has('renamed/#'), 'the subscription');
    connection.unsubscribe('renamed/#', old, true);
    await publishAll('renamed/x', 1, 2);
    await waitFor(() => given.length === 1, 'the subscription given up', PARKING_GRACE + 5000);
    assert.deepEqual(given, [['renamed/#', 2]]);
    assert.equal(connection.brokerSubscriptions().has('renamed/#'), false);
  });
});
