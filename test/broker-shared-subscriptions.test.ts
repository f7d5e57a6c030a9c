/**
 * Shared subscriptions (`$share/<group>/<filter>`, MQTT 5 section 4.8.2) in the embedded broker, with
 * MQTT.js clients over real TCP behind the packet gate. Each case names the statement it checks.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { EmbeddedBroker } from '../nodes/lib/broker/aedes/embedded-broker.js';
import mqttPacket from 'mqtt-packet';
import { connectWhenListening, OPEN_BROKER } from './support/embedded-broker.js';
import { RawSession } from './support/raw-mqtt.js';
import { RedisServer, redisBinary } from './support/redis.js';
import { skipUnlessInstalled } from './support/services.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

interface Received {
  client: string;
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

describe('embedded broker: shared subscriptions', () => {
  let broker: EmbeddedBroker | undefined;
  let port = 0;
  const clients: mqtt.MqttClient[] = [];
  const received: Received[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    received.length = 0;
    publisher = undefined;
    await broker?.close();
    broker = undefined;
  });

  async function startBroker(access = OPEN_BROKER.access): Promise<void> {
    port = await freePort();
    broker = new EmbeddedBroker({ ...OPEN_BROKER, access, port, bind: '127.0.0.1', maxOfflineMessages: 0 });
    await broker.start();
  }

  async function client(clientId: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const connected = await connectWhenListening(port, { protocolVersion: 5, clientId, ...options });
    connected.on('message', (topic, payload, packet) =>
      received.push({
        client: clientId,
        topic,
        payload: payload.toString(),
        qos: packet.qos,
        retain: packet.retain,
      }),
    );
    clients.push(connected);
    return connected;
  }

  let publisher: mqtt.MqttClient | undefined;
  async function publish(count: number, topic = 'jobs/a', qos: 0 | 1 | 2 = 1): Promise<void> {
    publisher ??= await client('publisher');
    for (let i = 0; i < count; i++) await publisher.publishAsync(topic, String(i), { qos });
  }

  const by = (clientId: string) => received.filter((message) => message.client === clientId);
  const payloadsOf = (clientId: string) => by(clientId).map((message) => message.payload);
  const numbers = (count: number) => Array.from({ length: count }, (_, i) => String(i));
  const sortedNumbers = (payloads: string[]) => [...payloads].sort((a, b) => Number(a) - Number(b));

  it('[MQTT-3.2.2-13] tells MQTT 5 clients in the CONNACK that shared subscriptions are available', async () => {
    await startBroker();
    const member = await client('member');
    const connack = (member as unknown as { connackPacket: mqtt.IConnackPacket }).connackPacket;
    assert.equal(connack.properties?.sharedSubscriptionAvailable, true);
  });

  it('[MQTT-4.8.2-3] gives each message to one member of the group, in turn, granting SUBACK its QoS', async () => {
    await startBroker();
    const granted: number[] = [];
    for (const id of ['m1', 'm2', 'm3']) {
      const [grant] = await (await client(id)).subscribeAsync('$share/workers/jobs/#', { qos: 1 });
      granted.push(grant.qos);
    }
    assert.deepEqual(granted, [1, 1, 1]);
    await publish(30);
    await waitFor(() => received.length === 30, 'the 30 messages');
    await delay(100);
    assert.equal(received.length, 30, 'no message twice');
    assert.deepEqual(sortedNumbers(received.map((message) => message.payload)), numbers(30));
    // Round robin over three connected members: ten each.
    assert.deepEqual(
      ['m1', 'm2', 'm3'].map((id) => by(id).length),
      [10, 10, 10],
    );
    // The broker sends the topic the message was published to, never the $share filter.
    assert.ok(received.every((message) => message.topic === 'jobs/a' && message.qos === 1));
  });

  it('[MQTT-3.3.4-3] gives a member that also subscribes on its own a copy for each, each naming its subscription, live and from its queue', async () => {
    await startBroker();
    const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
    const named: [string, unknown][] = [];
    const listen = (member: mqtt.MqttClient) =>
      member.on('message', (_topic, payload, packet) =>
        named.push([payload.toString(), packet.properties?.subscriptionIdentifier]),
      );
    const member = await client('both', session);
    listen(member);
    await member.subscribeAsync('$share/g/jobs/#', { qos: 1, properties: { subscriptionIdentifier: 4 } });
    await member.subscribeAsync('jobs/a', { qos: 1, properties: { subscriptionIdentifier: 8 } });
    await publish(3);
    await waitFor(() => named.length === 6, 'a copy for the share and one for the own subscription');
    const sorted = () => [...named].sort((a, b) => `${a[0]}${a[1]}`.localeCompare(`${b[0]}${b[1]}`));
    const expected = ['0', '1', '2'].flatMap((n) => [
      [n, 4],
      [n, 8],
    ]);
    assert.deepEqual(sorted(), expected);

    await member.endAsync();
    named.length = 0;
    await publish(3);
    const resumed = mqtt.connect({
      protocolVersion: 5,
      clientId: 'both',
      ...session,
      host: '127.0.0.1',
      port,
      reconnectPeriod: 0,
    });
    clients.push(resumed);
    listen(resumed);
    await waitFor(() => named.length === 6, 'both copies from the queue');
    await delay(100);
    assert.deepEqual(sorted(), expected);
  });

  it('gives one copy to each group, and every plain subscriber its own', async () => {
    await startBroker();
    for (const [id, filter] of [
      ['g1-a', '$share/g1/jobs/+'],
      ['g1-b', '$share/g1/jobs/+'],
      ['g2-a', '$share/g2/jobs/#'],
      ['plain', 'jobs/#'],
    ])
      await (await client(id)).subscribeAsync(filter, { qos: 1 });
    await publish(10);
    await waitFor(() => received.length === 30, 'a copy for g1, for g2 and for the plain subscriber');
    await delay(100);
    assert.deepEqual(sortedNumbers([...payloadsOf('g1-a'), ...payloadsOf('g1-b')]), numbers(10));
    assert.deepEqual(payloadsOf('g2-a'), numbers(10));
    assert.deepEqual(payloadsOf('plain'), numbers(10));
  });

  it('gives a client holding both a plain and a shared subscription its plain copy and, when chosen, the group one (section 4.8.2)', async () => {
    await startBroker();
    const both = await client('both');
    await both.subscribeAsync({ 'jobs/#': { qos: 1 }, '$share/g/jobs/#': { qos: 1 } });
    await publish(5);
    await waitFor(() => received.length === 10, 'two copies of each message');
    assert.deepEqual(sortedNumbers(payloadsOf('both')), sortedNumbers([...numbers(5), ...numbers(5)]));
  });

  it('[MQTT-4.8.2-3] sends at the lower of the publication QoS and the member subscription QoS', async () => {
    await startBroker();
    await (await client('qos0')).subscribeAsync('$share/g/jobs/#', { qos: 0 });
    await publish(1, 'jobs/a', 1);
    await waitFor(() => received.length === 1, 'the message');
    assert.equal(received[0].qos, 0);
  });

  it('hands everything to the members left once one unsubscribes or disconnects', async () => {
    await startBroker();
    const leaving = await client('leaving');
    const going = await client('going');
    await (await client('staying')).subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await leaving.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await going.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await leaving.unsubscribeAsync('$share/g/jobs/#');
    await going.endAsync();
    await publish(6);
    await waitFor(() => received.length === 6, 'the 6 messages');
    await delay(100);
    assert.deepEqual(payloadsOf('staying'), numbers(6));
  });

  it('sends no retained message on a shared subscription (section 4.8.2), live messages only', async () => {
    await startBroker();
    const publisher = await client('retainer');
    await publisher.publishAsync('jobs/kept', 'retained', { qos: 1, retain: true });
    await (await client('member')).subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await (await client('plain')).subscribeAsync('jobs/#', { qos: 1 });
    await waitFor(() => by('plain').length === 1, 'the retained message on the plain subscription');
    await delay(200);
    assert.deepEqual(by('member'), []);
    await publisher.publishAsync('jobs/live', 'live', { qos: 1 });
    await waitFor(() => by('member').length === 1, 'the live message');
    assert.deepEqual(payloadsOf('member'), ['live']);
  });

  it('re-routes the QoS 1 messages a clean-session member left unacknowledged to another member (section 4.8.2, a SHOULD)', async () => {
    await startBroker();
    const silent = await client('silent');
    // Never acknowledges: MQTT.js sends the PUBACK once its message handler calls back, and reads
    // nothing more meanwhile (the broker has sent it its second message all the same).
    silent.handleMessage = (_packet, _callback) => undefined;
    await silent.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await (await client('steady')).subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await publish(4);
    await waitFor(
      () => by('silent').length === 1 && by('steady').length === 2,
      'the messages of each member',
    );
    await silent.endAsync(true);
    await waitFor(() => by('steady').length === 4, 'the two unacknowledged messages at the other member');
    assert.deepEqual(sortedNumbers(payloadsOf('steady')), numbers(4));
  });

  it('queues for a member with a persistent session while no member is connected, and drops QoS 0 then', async () => {
    await startBroker();
    const away = await client('away', { clean: false, properties: { sessionExpiryInterval: 300 } });
    await away.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await away.endAsync();
    await publish(3, 'jobs/a', 1);
    await publisher?.publishAsync('jobs/a', 'qos0', { qos: 0 });
    await client('away', { clean: false, properties: { sessionExpiryInterval: 300 } });
    await waitFor(() => by('away').length === 3, 'the three queued messages');
    await delay(200);
    assert.deepEqual(payloadsOf('away'), numbers(3));
  });

  it('takes $share/ from MQTT 3.1.1 clients too, as Mosquitto does', async () => {
    await startBroker();
    for (const id of ['v4-a', 'v4-b'])
      await (await client(id, { protocolVersion: 4 })).subscribeAsync('$share/g/jobs/#', { qos: 1 });
    await publish(10);
    await waitFor(() => received.length === 10, 'the 10 messages');
    await delay(100);
    assert.deepEqual([by('v4-a').length, by('v4-b').length], [5, 5]);
  });

  it('judges a shared subscription by its filter under the topic rules (SUBACK 0x87 otherwise)', async () => {
    await startBroker({ users: [], anonymous: { publish: ['#'], subscribe: ['jobs/#'] } });
    const member = await client('member');
    const [allowed] = await member.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    assert.equal(allowed.qos, 1);
    const refusal = await member.subscribeAsync('$share/g/other/#', { qos: 1 }).then(
      () => undefined,
      (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
    );
    assert.deepEqual(refusal, [0x87]);
  });

  for (const [statement, filter, options] of [
    ['MQTT-4.8.2-1', '$share//jobs/#', {}],
    ['MQTT-4.8.2-2', '$share/g+/jobs/#', {}],
    ['MQTT-4.8.2-2', '$share/g', {}],
    ['MQTT-3.8.3-4', '$share/g/jobs/#', { nl: true }],
  ] as const) {
    it(`[${statement}] closes the connection of a client subscribing to ${filter}${'nl' in options ? ' with No Local' : ''}`, async () => {
      await startBroker();
      // MQTT.js would not send these filters: the packets are written here.
      const session = await RawSession.open(port);
      const v5 = { protocolVersion: 5 } as const;
      session.send(
        mqttPacket.generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 5,
            clientId: 'member',
            clean: true,
            keepalive: 0,
          },
          v5,
        ),
      );
      await session.receive(4);
      session.send(
        mqttPacket.generate(
          { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1, ...options }] },
          v5,
        ),
      );
      assert.ok(await session.closesWithin(3000), 'the connection is still open');
    });
  }
});

describe('embedded brokers on one Redis: shared subscriptions across the cluster', () => {
  before(function () {
    skipUnlessInstalled(this, 'redis-server', redisBinary);
  });
  const redis = new RedisServer();
  const brokers: EmbeddedBroker[] = [];
  const clients: mqtt.MqttClient[] = [];
  before(() => redis.start());
  after(() => redis.dispose());
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  });

  async function startBroker(): Promise<number> {
    const port = await freePort();
    const broker = new EmbeddedBroker({
      ...OPEN_BROKER,
      port,
      bind: '127.0.0.1',
      maxOfflineMessages: 0,
      redis: { url: redis.url },
    });
    await broker.start();
    brokers.push(broker);
    return port;
  }

  async function member(
    port: number,
    clientId: string,
    received: Map<string, string[]>,
  ): Promise<mqtt.MqttClient> {
    const client = await connectWhenListening(port, { protocolVersion: 5, clientId });
    clients.push(client);
    received.set(clientId, []);
    client.on('message', (_topic, payload) => received.get(clientId)?.push(payload.toString()));
    await client.subscribeAsync('$share/g/jobs/#', { qos: 1 });
    return client;
  }

  it('gives each message to one member of the group across the brokers, from whichever broker it was published on', async () => {
    const [a, b] = [await startBroker(), await startBroker()];
    const received = new Map<string, string[]>();
    await member(a, 'on-a-1', received);
    await member(a, 'on-a-2', received);
    await member(b, 'on-b', received);
    // The brokers tell each other at once which groups they have members of; a moment for that to cross Redis.
    await delay(500);
    const publishers = [a, b].map((port) => connectWhenListening(port, { protocolVersion: 5 }));
    const [onA, onB] = await Promise.all(publishers);
    clients.push(onA, onB);
    const TOTAL = 60;
    for (let n = 0; n < TOTAL; n++) await (n % 2 ? onB : onA).publishAsync('jobs/x', String(n), { qos: 1 });
    const all = () => [...received.values()].flat();
    await waitFor(() => all().length >= TOTAL, `the ${TOTAL} messages`);
    await delay(300); // a copy too many would come now
    assert.deepEqual(
      all().sort((x, y) => Number(x) - Number(y)),
      Array.from({ length: TOTAL }, (_, n) => String(n)),
      'every message once in the whole group',
    );
    assert.ok((received.get('on-b') ?? []).length > 0, 'the member on the other broker takes part');
    assert.ok((received.get('on-a-1') ?? []).length + (received.get('on-a-2') ?? []).length > 0);
  });
});
