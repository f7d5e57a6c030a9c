import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { Redis } from 'ioredis';
import { EmbeddedBroker } from '../nodes/lib/broker/aedes/embedded-broker.js';
import { allNodes, helper, translate, watchStatus, type RuntimeNode } from './support/node-red.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { OPEN_BROKER, connectWhenListening } from './support/embedded-broker.js';
import { RedisServer, redisBinary } from './support/redis.js';
import { freePort } from './support/ports.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay, waitFor } from './support/wait.js';
import { RawSession } from './support/raw-mqtt.js';
import mqttPacket from 'mqtt-packet';

type Protocol = 4 | 5;

/** A persistent session: MQTT 3.1.1 clean session off, MQTT 5 an expiry of `expiry` seconds. */
function session(clientId: string, protocolVersion: Protocol, expiry = 300): mqtt.IClientOptions {
  return protocolVersion === 4
    ? { clientId, protocolVersion, clean: false }
    : { clientId, protocolVersion, clean: false, properties: { sessionExpiryInterval: expiry } };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('embedded brokers on one Redis: offline bound and session expiry across the cluster', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const redis = new RedisServer();
  const brokers: EmbeddedBroker[] = [];
  const clients: MqttClient[] = [];
  let inspector: Redis;

  before(async () => {
    await redis.start();
    inspector = new Redis(redis.port, '127.0.0.1');
  });
  after(async () => {
    inspector?.disconnect();
    await redis.dispose();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  });

  /** A started broker on the shared Redis, on its own TCP port, and the topics it reported dropped. */
  async function startedBroker(maxOfflineMessages = 10_000) {
    const broker = new EmbeddedBroker({
      ...OPEN_BROKER,
      port: await freePort(),
      bind: '127.0.0.1',
      maxOfflineMessages,
      redis: { url: redis.url },
    });
    brokers.push(broker);
    const dropped: string[] = [];
    broker.on('offline-dropped', (clientId, topic) => dropped.push(`${clientId} ${topic}`));
    await broker.start();
    return { broker, port: broker.listeningAddress!.port, dropped };
  }

  /** Connects over TCP and records the numbers received (payloads), from the CONNACK on. */
  async function connect(port: number, options: mqtt.IClientOptions = {}) {
    const received: number[] = [];
    const client = mqtt.connect({
      host: '127.0.0.1',
      port,
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...options,
    });
    clients.push(client);
    // Queued messages come right after the CONNACK: listen before it.
    client.on('message', (_topic, payload) => received.push(Number(payload.toString())));
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    return { client, received, sessionPresent: connack.sessionPresent };
  }

  for (const protocolVersion of [4, 5] as const) {
    it(`keeps the newest maxOfflineMessages of a client away from the cluster, whichever broker took them, and trims no connected client (MQTT ${protocolVersion === 4 ? '3.1.1' : '5'})`, async () => {
      const a = await startedBroker(10);
      const b = await startedBroker(10);
      const clientId = `bounded-roamer-${protocolVersion}`;
      const topic = (n: number) => `bound-${protocolVersion}/${n}`;
      const droppedHere = () => a.dropped.concat(b.dropped).filter((line) => line.startsWith(`${clientId} `));
      const online = await connect(b.port, session(clientId, protocolVersion));
      await online.client.subscribeAsync(`bound-${protocolVersion}/#`, { qos: 1 });
      // A queues every message for the client of B until B has its PUBACK: sent all at once, the
      // queue holds more than 10 while the client is connected, and must not be cut.
      const publisherA = (await connect(a.port)).client;
      const publisherB = (await connect(b.port)).client;
      await Promise.all(range(1, 30).map((n) => publisherA.publishAsync(topic(n), String(n), { qos: 1 })));
      await waitFor(() => new Set(online.received).size === 30, 'the 30 messages, online');
      assert.deepEqual(droppedHere(), [], 'nothing dropped of a connected client');
      const queued = () => inspector.llen(`outgoing:${clientId}`);
      await waitFor(async () => (await queued()) === 0, 'every PUBACK to have cleared the queue');
      await online.client.endAsync();

      // Away: A then B take messages for it. A broker acknowledges a publication before it queues
      // it, and the cluster has no order but the queue's: each waits for the other's to be queued.
      const droppedWhileAway = () => droppedHere().map((line) => line.split(' ')[1]);
      for (let n = 101; n <= 112; n++) await publisherA.publishAsync(topic(n), String(n), { qos: 1 });
      await waitFor(() => droppedWhileAway().length === 2, "A's 2 drops");
      for (let n = 113; n <= 125; n++) await publisherB.publishAsync(topic(n), String(n), { qos: 1 });
      await waitFor(() => droppedWhileAway().length === 15, 'all 15 drops');
      assert.equal(await queued(), 10);
      const back = await connect(a.port, session(clientId, protocolVersion));
      assert.equal(back.sessionPresent, true);
      await waitFor(() => back.received.length >= 10, 'the 10 kept');
      await delay(300);
      assert.deepEqual(back.received, range(116, 125), 'the newest 10, once each');
      // Each drop is reported once, by the broker that made it.
      assert.deepEqual(
        a.dropped,
        [101, 102].map((n) => `${clientId} ${topic(n)}`),
      );
      assert.deepEqual(
        b.dropped,
        range(103, 115).map((n) => `${clientId} ${topic(n)}`),
      );
    });
  }

  for (const returnsTo of ['A', 'B'] as const) {
    it(`ends an MQTT 5 session left on A once its expiry passed: it is gone when the client comes back on ${returnsTo}`, async () => {
      const a = await startedBroker();
      const b = await startedBroker();
      const expiring = session(`expiring-on-${returnsTo}`, 5, 1);
      const first = await connect(a.port, expiring);
      await first.client.subscribeAsync('expiry/#', { qos: 1 });
      await first.client.endAsync();
      const publisher = (await connect(b.port)).client;
      await publisher.publishAsync('expiry/n', '1', { qos: 1 });
      await delay(1500);

      const back = await connect((returnsTo === 'A' ? a : b).port, expiring);
      assert.equal(back.sessionPresent, false, 'a new session');
      await publisher.publishAsync('expiry/n', '2', { qos: 1 });
      await delay(300);
      assert.deepEqual(back.received, [], 'neither the queued message nor a subscription left');
    });
  }

  it('resumes an MQTT 5 session on B within its expiry, with what was queued meanwhile, and A does not end it later', async () => {
    const a = await startedBroker();
    const b = await startedBroker();
    const resuming = session('expiry-resumer', 5, 1);
    const first = await connect(a.port, resuming);
    await first.client.subscribeAsync('resume/#', { qos: 1 });
    await first.client.endAsync();
    const publisher = (await connect(a.port)).client;
    for (const n of [1, 2, 3]) await publisher.publishAsync('resume/n', String(n), { qos: 1 });

    const onB = await connect(b.port, resuming);
    assert.equal(onB.sessionPresent, true);
    await waitFor(() => onB.received.length >= 3, 'the 3 queued messages');
    // Past the interval A would have timed from the disconnection: the session is B's and lives on.
    await delay(1500);
    await publisher.publishAsync('resume/n', '4', { qos: 1 });
    await waitFor(() => onB.received.includes(4), 'a message published after the interval');
    await onB.client.endAsync();
    const again = await connect(a.port, resuming);
    assert.equal(again.sessionPresent, true, 'the session still there');
    assert.deepEqual(onB.received, [1, 2, 3, 4]);
  });

  it('[MQTT-3.1.3-9] does not publish the delayed will of an MQTT 5 client that dropped from A and came back on B within the delay; publishes one that did not come back', async () => {
    const a = await startedBroker();
    const b = await startedBroker();
    const watcher = await connect(b.port, { clientId: 'will-watcher' });
    await watcher.client.subscribeAsync('wills/#', { qos: 1 });
    const withWill = (clientId: string, payload: string) => ({
      ...session(clientId, 5, 60),
      will: {
        topic: `wills/${clientId}`,
        payload: Buffer.from(payload),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: 2 },
      },
    });
    const back = await connect(a.port, withWill('will-back', '1'));
    // A subscription, so that the session is one to resume.
    await back.client.subscribeAsync('back/#', { qos: 1 });
    const gone = await connect(a.port, withWill('will-gone', '2'));
    // Dropped, not disconnected: each will waits for its delay in A.
    back.client.stream.destroy();
    gone.client.stream.destroy();
    const left = async () => !(await inspector.hexists('durable-mqtt:connected', 'will-back'));
    for (let tries = 0; !(await left()) && tries < 100; tries++) await delay(10);
    assert.ok(await left(), 'A sees the client gone');
    const onB = await connect(b.port, withWill('will-back', '1'));
    assert.equal(onB.sessionPresent, true);
    await waitFor(() => watcher.received.includes(2), 'the will of the client that did not come back');
    // Both wills were timed together: the other one would have come by now.
    await delay(1000);
    assert.deepEqual(watcher.received, [2]);
  });

  it('[MQTT-3.14.2.1 0x97] disconnects with Quota exceeded an MQTT 5 client of this broker over the bound that acknowledges nothing, whichever broker queued its messages', async () => {
    const a = await startedBroker(3);
    const b = await startedBroker(3);
    const told: string[] = [];
    a.broker.on('quota-disconnected', (clientId) => told.push(clientId));
    // Takes every message and acknowledges none; pings, so that its keep-alive alone does not close it.
    const stalled = await RawSession.open(a.port);
    const v5 = (packet: mqttPacket.Packet) => mqttPacket.generate(packet, { protocolVersion: 5 });
    stalled.send(
      v5({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: 'stalled-on-a',
        clean: false,
        keepalive: 1,
        properties: { sessionExpiryInterval: 60 },
      }),
      v5({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'quota/#', qos: 1 }] }),
    );
    const pinging = setInterval(() => stalled.send(v5({ cmd: 'pingreq' })), 400);
    const received = () => {
      const packets: mqttPacket.Packet[] = [];
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      parser.on('packet', (packet) => packets.push(packet));
      parser.parse(stalled.received);
      return packets;
    };
    const disconnects = () =>
      received().flatMap((packet) => (packet.cmd === 'disconnect' ? [packet.reasonCode] : []));
    try {
      await waitFor(() => received().some((packet) => packet.cmd === 'suback'), 'the SUBACK');
      // B takes the publications and queues them in Redis: A never enqueues for its own client.
      const publisher = (await connect(b.port)).client;
      for (let n = 1; n <= 10; n++) await publisher.publishAsync(`quota/${n}`, String(n), { qos: 1 });
      assert.deepEqual(disconnects(), [], 'disconnected while within its keep-alive');
      await waitFor(() => disconnects().length === 1, 'the DISCONNECT, once quiet for 1.5 keep-alives', 5000);
      assert.deepEqual(disconnects(), [0x97]);
      assert.deepEqual(told, ['stalled-on-a']);
      assert.ok(await stalled.closesWithin(2000), 'closed after the DISCONNECT');
    } finally {
      clearInterval(pinging);
      stalled.destroy();
    }
  });

  it('does not end the session of a client taken over by another broker when the first one times it', async () => {
    const a = await startedBroker();
    const b = await startedBroker();
    const moving = session('expiry-taken-over', 5, 1);
    const onA = await connect(a.port, moving);
    await onA.client.subscribeAsync('takeover/#', { qos: 1 });
    const onB = await connect(b.port, moving);
    assert.equal(onB.sessionPresent, true);
    await waitFor(() => !onA.client.connected, 'A to close its connection');
    // Past the interval A would have timed from closing its connection: the session is B's.
    await delay(1500);
    await onB.client.endAsync();
    const publisher = (await connect(a.port)).client;
    await publisher.publishAsync('takeover/n', '1', { qos: 1 });
    const back = await connect(a.port, moving);
    assert.equal(back.sessionPresent, true, 'the session still there');
    await waitFor(() => back.received.includes(1), 'the message queued while away');
  });

  it('ends a session whose broker stopped before its expiry, from another broker, whether or not the client comes back', async () => {
    const a = await startedBroker();
    const b = await startedBroker();
    for (const clientId of ['orphan-away', 'orphan-back']) {
      const first = await connect(a.port, session(clientId, 5, 2));
      await first.client.subscribeAsync(`orphan/${clientId}`, { qos: 1 });
      await first.client.endAsync();
    }
    const publisher = (await connect(b.port)).client;
    await publisher.publishAsync('orphan/orphan-away', '1', { qos: 1 });
    await a.broker.close();
    const stored = async (clientId: string) => ({
      subscriptions: await inspector.exists(`client:${clientId}`),
      queue: await inspector.exists(`outgoing:${clientId}`),
    });
    assert.deepEqual(await stored('orphan-away'), { subscriptions: 1, queue: 1 });

    await waitFor(
      async () => (await stored('orphan-away')).subscriptions === 0,
      'B to end the session nobody came back to',
      5000,
    );
    assert.deepEqual(await stored('orphan-away'), { subscriptions: 0, queue: 0 });
    const back = await connect(b.port, session('orphan-back', 5, 2));
    assert.equal(back.sessionPresent, false);
  });
});

describe('the embedded broker node on Redis: offline bound', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const redis = new RedisServer();
  before(async () => {
    await redis.start();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
    await redis.dispose();
  });
  afterEach(() => helper.unload());

  it('shows and logs the messages it drops from an offline queue, as without Redis', async () => {
    const port = await freePort();
    const flow = [
      embeddedBrokerNode(port, { persistence: 'redis', redisUrl: redis.url, maxOfflineMessages: 10 }),
    ];
    await helper.load(allNodes, flow);
    const node = helper.getNode(EMBEDDED_BROKER_ID) as RuntimeNode;
    const statuses = watchStatus(node);
    const warnings: string[] = [];
    node.on('call:warn', ((call: { args: [string] }) => warnings.push(call.args[0])) as never);
    const sleepy = await connectWhenListening(port, { clientId: 'sleepy-on-redis', clean: false });
    await sleepy.subscribeAsync('q/#', { qos: 1 });
    await sleepy.endAsync();
    const publisher = await connectWhenListening(port);
    for (let n = 1; n <= 25; n++) await publisher.publishAsync('q/n', String(n), { qos: 1 });
    await publisher.endAsync();
    await waitFor(
      () => statuses.at(-1)?.text?.endsWith('15 dropped from offline queues') === true,
      'the drop count in the status',
    );
    assert.equal(statuses.at(-1)?.fill, 'yellow');
    assert.equal(
      warnings[0],
      translate('durable-mqtt.errors.offline-dropped', {
        client: 'sleepy-on-redis',
        max: 10,
        count: 1,
        topic: 'q/n',
        total: 1,
      }),
    );
  });
});
