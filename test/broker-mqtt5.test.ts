/**
 * The embedded broker with MQTT 5 clients (MQTT.js v5) over real TCP, behind the packet gate as
 * every network client is. Each case names the statement of the OASIS MQTT 5.0 specification it checks.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { MAX_QOS2_AWAITING_RELEASE, TOPIC_ALIAS_MAXIMUM } from '../nodes/lib/broker/limits.js';
import { hashPassword } from '../nodes/lib/broker/passwords.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { RawSession, field, packet, uint16 } from './support/raw-mqtt.js';
import { delay, waitFor } from './support/wait.js';

const V5 = { protocolVersion: 5 } as const;

interface Received {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

function collectMessages(client: mqtt.MqttClient): Received[] {
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) =>
    received.push({ topic, payload: payload.toString(), packet }),
  );
  return received;
}

/** The CONNACK a connected client got: MQTT.js keeps it, in a field its types call private. */
function connackOf(client: mqtt.MqttClient): mqtt.IConnackPacket {
  return (client as unknown as { connackPacket: mqtt.IConnackPacket }).connackPacket;
}

/** The CONNACK of an MQTT 5 connection, or the reason code of the refusal. */
async function connack(port: number, options: mqtt.IClientOptions): Promise<mqtt.IConnackPacket | number> {
  try {
    const client = await connectWhenListening(port, { ...V5, ...options });
    await client.endAsync();
    return connackOf(client);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'number') throw error;
    return code;
  }
}

describe('embedded broker: MQTT 5 clients', () => {
  let port: number;
  before(async () => {
    await helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  async function openBroker(properties: Record<string, unknown> = {}) {
    port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, properties)]);
  }

  const clients: mqtt.MqttClient[] = [];
  async function client(options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const connected = await connectWhenListening(port, { ...V5, ...options });
    clients.push(connected);
    return connected;
  }
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  it('[MQTT-3.1.2-2] accepts MQTT 3.1, 3.1.1 and 5 clients on one listener', async () => {
    await openBroker();
    const v31 = await client({ protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'v31' });
    const v311 = await client({ protocolVersion: 4, clientId: 'v311' });
    const v5 = await client({ clientId: 'v5' });
    const received = collectMessages(v5);
    await v5.subscribeAsync('versions/#', { qos: 1 });
    await v31.publishAsync('versions/3', 'from 3.1', { qos: 1 });
    await v311.publishAsync('versions/4', 'from 3.1.1', { qos: 1 });
    await waitFor(() => received.length === 2, 'both messages');
    assert.deepEqual(received.map((m) => m.payload).sort(), ['from 3.1', 'from 3.1.1']);
  });

  it('[MQTT-3.2.2-16] [MQTT-3.2.2-13] answers CONNACK with the assigned client id, its Receive Maximum, that shared subscriptions are available, and no refusal of QoS 2, retain, wildcards or subscription identifiers', async () => {
    await openBroker();
    const answer = await connack(port, { clientId: '' });
    assert.ok(typeof answer !== 'number');
    assert.equal(answer.reasonCode, 0);
    assert.match(String(answer.properties?.assignedClientIdentifier), /.+/);
    assert.equal(answer.properties?.sharedSubscriptionAvailable, true);
    assert.equal(answer.properties?.receiveMaximum, MAX_QOS2_AWAITING_RELEASE);
    assert.equal(answer.properties?.topicAliasMaximum, TOPIC_ALIAS_MAXIMUM);
    // What the broker has in full goes unsaid, which MQTT 5 reads as available [MQTT-3.2.2-9]
    // (Maximum QoS), 3.2.2.3.5 (Retain Available), 3.2.2.3.12 and 3.2.2.3.13 (wildcards, identifiers).
    const { maximumQoS, retainAvailable, wildcardSubscriptionAvailable, subscriptionIdentifiersAvailable } =
      answer.properties ?? {};
    assert.ok(maximumQoS === undefined || maximumQoS === 2, `Maximum QoS ${maximumQoS}`);
    assert.notEqual(retainAvailable, false, 'Retain Available');
    assert.notEqual(wildcardSubscriptionAvailable, false, 'Wildcard Subscription Available');
    assert.notEqual(subscriptionIdentifiersAvailable, false, 'Subscription Identifier Available');
  });

  it('[3.1.2.11.6] [3.2.2.3.15] answers a client asking Request Response Information with a plain CONNACK, no Response Information, and serves it', async () => {
    await openBroker();
    const answer = await connack(port, {
      clientId: 'asks-response',
      properties: { requestResponseInformation: true },
    });
    assert.ok(typeof answer !== 'number');
    assert.equal(answer.reasonCode, 0);
    assert.equal(answer.properties?.responseInformation, undefined);
    const asking = await client({
      clientId: 'asks-response',
      properties: { requestResponseInformation: true },
    });
    const received = collectMessages(asking);
    await asking.subscribeAsync('responses/#', { qos: 1 });
    await asking.publishAsync('responses/1', 'served', { qos: 1 });
    await waitFor(() => received.length === 1, 'its own message');
    assert.equal(received[0].payload, 'served');
  });

  it('[MQTT-3.2.2-3] [MQTT-3.14.4-3] disconnects the older connection of a client id with 0x8E, session taken over', async () => {
    await openBroker();
    const first = await client({ clientId: 'twin', reconnectPeriod: 0 });
    const reasons: number[] = [];
    first.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? -1));
    await client({ clientId: 'twin' });
    await waitFor(() => reasons.length === 1, 'the DISCONNECT of the first connection');
    assert.deepEqual(reasons, [0x8e]);
  });

  it('[MQTT-3.14.4-3] disconnects MQTT 5 network clients with 0x8B, server shutting down, when the node closes', async () => {
    await openBroker();
    const connected = await client({ clientId: 'to-be-shut-out' });
    // Aedes tells only a client it counts as connected, once its session is set up after the CONNACK: a
    // message delivered to it shows it is (none is delivered before, client-patches.ts).
    const received = collectMessages(connected);
    await connected.subscribeAsync('shutdown/ping', { qos: 1 });
    await connected.publishAsync('shutdown/ping', 'ready', { qos: 1 });
    await waitFor(() => received.length === 1, 'the message to itself');
    const reasons: number[] = [];
    connected.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? -1));
    let socketClosed = false;
    connected.stream.once('close', () => (socketClosed = true));
    // The deploy stops the node: a redeploy or a stop of the flow does the same.
    await helper.unload();
    await waitFor(() => socketClosed, 'the connection to close');
    assert.deepEqual(reasons, [0x8b]);
  });

  it('[MQTT-3.1.3-9] publishes a will after its Will Delay Interval, and [MQTT-3.14.4-3] at once on DISCONNECT 0x04', async () => {
    await openBroker();
    const watcher = await client({ clientId: 'will-watcher' });
    const received = collectMessages(watcher);
    await watcher.subscribeAsync('wills/#', { qos: 1 });
    const will = (topic: string, delay: number) => ({
      topic,
      payload: Buffer.from('gone'),
      qos: 1 as const,
      retain: false,
      properties: { willDelayInterval: delay },
    });
    // The will waits for the delay or the end of the session, whichever comes first: the session outlives it.
    const delayed = await client({
      clientId: 'delayed',
      will: will('wills/delayed', 2),
      reconnectPeriod: 0,
      properties: { sessionExpiryInterval: 60 },
    });
    const lostAt = Date.now();
    delayed.stream.destroy();
    await waitFor(() => received.length === 1, 'the delayed will', 10_000);
    const waited = Date.now() - lostAt;
    assert.ok(waited >= 1500, `published ${waited} ms after the connection was lost`);
    const leaving = await client({ clientId: 'leaving', will: will('wills/leaving', 0), reconnectPeriod: 0 });
    await leaving.endAsync(false, { reasonCode: 0x04 });
    await waitFor(() => received.length === 2, 'the will sent with DISCONNECT 0x04');
    assert.deepEqual(
      received.map((m) => m.topic),
      ['wills/delayed', 'wills/leaving'],
    );
  });

  it('[MQTT-3.3.4-3] [MQTT-3.8.2-1] sends each message with the Subscription Identifier of the subscription it matched', async () => {
    await openBroker();
    const subscriber = await client({ clientId: 'identified' });
    const received = collectMessages(subscriber);
    await subscriber.subscribeAsync('ids/a/#', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await subscriber.subscribeAsync('ids/b/#', { qos: 1, properties: { subscriptionIdentifier: 9 } });
    const publisher = await client({ clientId: 'ids-publisher' });
    await publisher.publishAsync('ids/a/x', 'a', { qos: 1 });
    await publisher.publishAsync('ids/b/x', 'b', { qos: 1 });
    await waitFor(() => received.length === 2, 'both messages');
    const identifiers = received.map((m) => [m.topic, m.packet.properties?.subscriptionIdentifier]);
    assert.deepEqual(identifiers, [
      ['ids/a/x', 7],
      ['ids/b/x', 9],
    ]);
  });

  for (const persistence of ['memory', 'disk'] as const)
    it(`[MQTT-3.3.4-3] names every matching subscription's identifier on the one copy a client with overlapping subscriptions gets, live and from its queue (${persistence})`, async () => {
      if (persistence === 'disk')
        helper.settings({ userDir: temporaryDirectory('durable-mqtt-identifiers-') });
      await openBroker({ persistence });
      const session = {
        clientId: `overlapping-${persistence}`,
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      };
      let subscriber = await client(session);
      await subscriber.subscribeAsync('ov/#', { qos: 1, properties: { subscriptionIdentifier: 3 } });
      await subscriber.subscribeAsync('ov/a', { qos: 1, properties: { subscriptionIdentifier: 5 } });
      let received = collectMessages(subscriber);
      const publisher = await client({ clientId: 'ov-publisher' });
      const identifiersOf = (messages: Received[]) =>
        messages.map((m) => {
          const ids = m.packet.properties?.subscriptionIdentifier;
          return [m.topic, Array.isArray(ids) ? [...ids].sort() : ids];
        });
      await publisher.publishAsync('ov/a', 'both', { qos: 1 });
      await publisher.publishAsync('ov/b', 'one', { qos: 1 });
      await waitFor(() => received.length === 2, 'both messages');
      await delay(100);
      assert.deepEqual(identifiersOf(received), [
        ['ov/a', [3, 5]],
        ['ov/b', 3],
      ]);

      await subscriber.endAsync();
      await publisher.publishAsync('ov/a', 'both, queued', { qos: 1 });
      await publisher.publishAsync('ov/b', 'one, queued', { qos: 1 });
      // Listening before the CONNACK: the queue comes right behind it.
      subscriber = mqtt.connect({ ...V5, ...session, host: '127.0.0.1', port, reconnectPeriod: 0 });
      clients.push(subscriber);
      received = collectMessages(subscriber);
      await waitFor(() => received.length === 2, 'both queued messages');
      await delay(100);
      assert.deepEqual(identifiersOf(received), [
        ['ov/a', [3, 5]],
        ['ov/b', 3],
      ]);
    });

  it('[MQTT-3.3.2-10] [MQTT-3.3.2-12] takes the topic aliases a client sets, and holds the aliased publications to the topic rules', async () => {
    const hash = await hashPassword('pw');
    port = await freePort();
    await helper.load(
      allNodes,
      [
        embeddedBrokerNode(port, {
          accounts: [{ username: 'device', publish: ['alias/#'], subscribe: ['#'] }],
          allowAnonymous: true,
        }),
      ],
      { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify({ device: hash }) } },
    );
    const watcher = await client({ clientId: 'watcher' });
    const received = collectMessages(watcher);
    await watcher.subscribeAsync('#', { qos: 1 });
    const device = await client({ clientId: 'device-1', username: 'device', password: 'pw' });
    await device.publishAsync('alias/temperature', '20', { qos: 1, properties: { topicAlias: 1 } });
    await device.publishAsync('', '21', { qos: 1, properties: { topicAlias: 1 } });
    // An alias set for a topic outside the rules: both publications refused, the second by what it stands for.
    const refusals: number[] = [];
    for (const topic of ['secret/key', '']) {
      // MQTT.js fails a publication whose PUBACK has a reason code of 0x80 or above, with that code.
      const code = await device.publishAsync(topic, 'x', { qos: 1, properties: { topicAlias: 2 } }).then(
        () => 0,
        (error: { code?: number }) => error.code ?? -1,
      );
      refusals.push(code);
    }
    await waitFor(() => received.length === 2, 'the two aliased publications');
    await delay(200);
    assert.deepEqual(
      received.map((m) => [m.topic, m.payload]),
      [
        ['alias/temperature', '20'],
        ['alias/temperature', '21'],
      ],
    );
    assert.deepEqual(refusals, [0x87, 0x87]);
    assert.ok(device.connected);
  });

  for (const persistence of ['memory', 'disk'] as const) {
    it(`[MQTT-3.1.2-23] keeps a session for its Session Expiry Interval after the connection closes, and not longer (${persistence})`, async () => {
      if (persistence === 'disk')
        helper.settings({ userDir: temporaryDirectory('durable-mqtt-v5-session-') });
      await openBroker({ persistence });
      const session = {
        clientId: `expiring-${persistence}`,
        clean: false,
        properties: { sessionExpiryInterval: 2 },
      };
      const first = await client(session);
      await first.subscribeAsync('expiry/#', { qos: 1 });
      await first.endAsync();
      const publisher = await client({ clientId: `publisher-${persistence}` });
      await publisher.publishAsync('expiry/queued', 'kept', { qos: 1 });

      const resumed = await client(session);
      const received = collectMessages(resumed);
      assert.equal(connackOf(resumed).sessionPresent, true);
      await waitFor(() => received.some((m) => m.payload === 'kept'), 'the message queued while away');
      await resumed.endAsync();

      await delay(3000);
      const late = await client(session);
      assert.equal(connackOf(late).sessionPresent, false);
    });
  }

  it('[MQTT-3.3.2-5] [MQTT-3.3.2-6] drops a queued message once its expiry has passed, and sends the rest with what remains of their interval', async () => {
    await openBroker();
    const session = { clientId: 'away', clean: false, properties: { sessionExpiryInterval: 60 } };
    const away = await client(session);
    await away.subscribeAsync('expiring/#', { qos: 1 });
    await away.endAsync();
    const publisher = await client({ clientId: 'expiry-publisher' });
    await publisher.publishAsync('expiring/short', 'short', {
      qos: 1,
      properties: { messageExpiryInterval: 1 },
    });
    await publisher.publishAsync('expiring/long', 'long', {
      qos: 1,
      properties: { messageExpiryInterval: 60 },
    });
    await delay(2100);
    const back = await client(session);
    const received = collectMessages(back);
    await waitFor(() => received.some((m) => m.payload === 'long'), 'the message still valid');
    await delay(300);
    assert.deepEqual(
      received.map((m) => m.payload),
      ['long'],
    );
    const remaining = received[0].packet.properties?.messageExpiryInterval;
    assert.ok(remaining !== undefined && remaining <= 58, `remaining interval ${remaining}`);
  });

  it('[MQTT-3.8.3-3] does not send a client its own messages on a No Local subscription', async () => {
    await openBroker();
    const both = await client({ clientId: 'no-local' });
    const received = collectMessages(both);
    await both.subscribeAsync('local/own', { qos: 1, nl: true });
    await both.subscribeAsync('local/echo', { qos: 1 });
    await both.publishAsync('local/own', 'not back', { qos: 1 });
    await both.publishAsync('local/echo', 'back', { qos: 1 });
    await waitFor(() => received.length > 0, 'the echoed message');
    await delay(300);
    assert.deepEqual(
      received.map((m) => m.topic),
      ['local/echo'],
    );
  });

  it('[MQTT-3.3.1-12] [MQTT-3.3.1-13] sets RETAIN on forwarded messages only with Retain As Published', async () => {
    await openBroker();
    const plain = await client({ clientId: 'rap-0' });
    const asPublished = await client({ clientId: 'rap-1' });
    const plainReceived = collectMessages(plain);
    const publishedReceived = collectMessages(asPublished);
    await plain.subscribeAsync('rap/t', { qos: 1 });
    await asPublished.subscribeAsync('rap/t', { qos: 1, rap: true });
    const publisher = await client({ clientId: 'rap-publisher' });
    await publisher.publishAsync('rap/t', 'live and retained', { qos: 1, retain: true });
    await waitFor(() => plainReceived.length === 1 && publishedReceived.length === 1, 'both copies');
    assert.equal(plainReceived[0].packet.retain, false);
    assert.equal(publishedReceived[0].packet.retain, true);
    await publisher.publishAsync('rap/t', '', { qos: 1, retain: true });
  });

  it('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] sends retained messages by Retain Handling 0, 1 and 2', async () => {
    await openBroker();
    const publisher = await client({ clientId: 'rh-publisher' });
    await publisher.publishAsync('rh/t', 'retained', { qos: 1, retain: true });
    const subscriber = await client({ clientId: 'rh-subscriber' });
    const received = collectMessages(subscriber);
    const retainedCount = async (filter: string, rh: 0 | 1 | 2) => {
      received.length = 0;
      await subscriber.subscribeAsync(filter, { qos: 1, rh });
      await delay(300);
      return received.length;
    };
    assert.equal(await retainedCount('rh/t', 0), 1, 'Retain Handling 0, new subscription');
    assert.equal(await retainedCount('rh/t', 0), 1, 'Retain Handling 0, existing subscription');
    assert.equal(await retainedCount('rh/+', 1), 1, 'Retain Handling 1, new subscription');
    assert.equal(await retainedCount('rh/+', 1), 0, 'Retain Handling 1, existing subscription');
    assert.equal(await retainedCount('rh/#', 2), 0, 'Retain Handling 2');
    await publisher.publishAsync('rh/t', '', { qos: 1, retain: true });
  });

  it('[MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] forwards response topic, correlation data, content type and user properties unaltered, in order', async () => {
    await openBroker();
    const responder = await client({ clientId: 'responder' });
    const received = collectMessages(responder);
    await responder.subscribeAsync('request/#', { qos: 1 });
    const requester = await client({ clientId: 'requester' });
    const correlationData = Buffer.from([0, 1, 2, 0xff]);
    const userProperties = { zeta: 'last-named-first', alpha: ['1', '2', '3'], mid: 'x' };
    await requester.publishAsync('request/time', 'now?', {
      qos: 1,
      properties: {
        responseTopic: 'reply/requester',
        correlationData,
        contentType: 'text/plain; charset=utf-8',
        userProperties,
        payloadFormatIndicator: true,
      },
    });
    await waitFor(() => received.length === 1, 'the request');
    const properties = received[0].packet.properties ?? {};
    assert.equal(properties.responseTopic, 'reply/requester');
    assert.deepEqual(properties.correlationData, correlationData);
    assert.equal(properties.contentType, 'text/plain; charset=utf-8');
    assert.equal(properties.payloadFormatIndicator, true);
    assert.deepEqual({ ...properties.userProperties }, userProperties);
    assert.deepEqual(Object.keys(properties.userProperties ?? {}), ['zeta', 'alpha', 'mid']);
  });

  /** MQTT 5 packets a server must not take, each closing its connection (a section number where no statement is numbered). */
  const MALFORMED_V5: [rule: string, what: string, bytes: Buffer][] = [
    // PUBLISH "t" at QoS 0: the property length, the properties, then the payload "p".
    [
      '2.2.2.2',
      'a PUBLISH with an unknown property id',
      packet(0x30, field('t'), Buffer.from([2, 0x7f, 0]), Buffer.from('p')),
    ],
    [
      '2.2.2.2',
      'a PUBLISH with its content type twice',
      packet(
        0x30,
        field('t'),
        Buffer.from([8, 0x03]),
        field('a'),
        Buffer.from([0x03]),
        field('b'),
        Buffer.from('p'),
      ),
    ],
    [
      'MQTT-3.3.2-8',
      'a PUBLISH with topic alias 0',
      packet(0x30, field('t'), Buffer.from([3, 0x23]), uint16(0), Buffer.from('p')),
    ],
    [
      'MQTT-3.3.2-9',
      'a PUBLISH with a topic alias above the Topic Alias Maximum',
      packet(0x30, field('t'), Buffer.from([3, 0x23]), uint16(TOPIC_ALIAS_MAXIMUM + 1), Buffer.from('p')),
    ],
    [
      '3.3.2.3.4',
      'a PUBLISH with an empty topic and a topic alias never set',
      packet(0x30, field(''), Buffer.from([3, 0x23]), uint16(5), Buffer.from('p')),
    ],
    [
      '1.5.5',
      'a property length of five bytes',
      packet(0x30, field('t'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01])),
    ],
    [
      '3.4.2.1',
      'a PUBACK with reason code 0x05, not one a PUBACK has',
      packet(0x40, uint16(1), Buffer.from([0x05, 0])),
    ],
  ];

  for (const [rule, what, bytes] of MALFORMED_V5) {
    it(`[${rule}] closes the connection of an MQTT 5 client on ${what}, and serves the others`, async () => {
      await openBroker();
      const honest = await client({ clientId: 'honest' });
      const received = collectMessages(honest);
      await honest.subscribeAsync('honest/#', { qos: 1 });
      const session = await RawSession.open(port);
      session.send(
        mqttPacket.generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 5,
            clientId: 'malformed',
            clean: true,
            keepalive: 0,
          },
          { protocolVersion: 5 },
        ),
      );
      await session.receive(4);
      session.send(bytes);
      assert.ok(await session.closesWithin(3000), 'the connection is still open');
      await honest.publishAsync('honest/after', 'served', { qos: 1 });
      await waitFor(() => received.some((m) => m.topic === 'honest/after'), 'the honest message');
    });
  }

  describe('with users and topic rules', () => {
    const ADMIN = { username: 'admin', password: 'admin-secret' };
    const SENSOR = { username: 'sensor', password: 'sensor-secret' };

    async function securedBroker() {
      port = await freePort();
      const hashes = {
        admin: await hashPassword(ADMIN.password),
        sensor: await hashPassword(SENSOR.password),
      };
      const node = embeddedBrokerNode(port, {
        accounts: [
          { username: 'admin', publish: ['#'], subscribe: ['#'] },
          { username: 'sensor', publish: ['sensors/#'], subscribe: ['public/#'] },
        ],
        allowAnonymous: false,
      });
      await helper.load(allNodes, [node], { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify(hashes) } });
    }

    it('[MQTT-3.2.2-6] refuses bad credentials with 0x86 and an anonymous client with 0x87', async () => {
      await securedBroker();
      assert.equal(await connack(port, { clientId: 'wrong', ...ADMIN, password: 'nope' }), 0x86);
      assert.equal(await connack(port, { clientId: 'anonymous' }), 0x87);
      const accepted = await connack(port, { clientId: 'right', ...ADMIN });
      assert.ok(typeof accepted !== 'number' && accepted.reasonCode === 0);
    });

    it('[MQTT-3.4.2-1] [MQTT-3.9.3-1] answers a refused publication and subscription with 0x87, and the connection stays', async () => {
      await securedBroker();
      const admin = await client({ clientId: 'admin-watch', ...ADMIN });
      const seen = collectMessages(admin);
      await admin.subscribeAsync('#', { qos: 1 });
      const sensor = await client({ clientId: 'sensor-1', ...SENSOR });
      // MQTT.js fails a publication whose PUBACK has a reason code of 0x80 or above, with that code.
      const refusal = await sensor.publishAsync('commands/x', 'refused', { qos: 1 }).then(
        () => 'accepted',
        (error: { code?: unknown }) => error.code,
      );
      assert.equal(refusal, 0x87);
      const granted = await sensor
        .subscribeAsync('private/#', { qos: 1 })
        .catch((error: { packet?: { granted?: number[] } }) =>
          error.packet?.granted?.map((qos) => ({ qos })),
        );
      assert.deepEqual(
        granted?.map((grant) => grant.qos),
        [0x87],
      );
      await sensor.publishAsync('sensors/t', 'allowed', { qos: 1 });
      await waitFor(() => seen.some((m) => m.topic === 'sensors/t'), 'the allowed publication');
      assert.ok(!seen.some((m) => m.topic === 'commands/x'));
      assert.ok(sensor.connected);
    });

    /** The packets a sensor gets for refusals: publications at QoS 1 and 2, one to `$SYS/`, a subscription, an unsubscription. */
    async function refusalsSeen(requestProblemInformation: boolean): Promise<mqtt.Packet[]> {
      const sensor = await client({
        clientId: 'sensor-problems',
        ...SENSOR,
        properties: { requestProblemInformation },
      });
      const packets: mqtt.Packet[] = [];
      sensor.on('packetreceive', (packet) => packets.push(packet));
      const settle = (promise: Promise<unknown>) =>
        promise.then(
          () => undefined,
          () => undefined,
        );
      await settle(sensor.publishAsync('commands/x', 'refused', { qos: 1 }));
      await settle(sensor.publishAsync('commands/y', 'refused', { qos: 2 }));
      await settle(sensor.publishAsync('$SYS/x', 'reserved', { qos: 1 }));
      await settle(sensor.subscribeAsync('private/#', { qos: 1 }));
      await settle(sensor.unsubscribeAsync('never/subscribed'));
      await sensor.endAsync();
      return packets;
    }

    /** The CONNACK the broker answers a raw MQTT 5 CONNECT of `fields` with, parsed. */
    async function rawConnack(fields: {
      clientId: string;
      username?: string;
      password?: Buffer;
    }): Promise<mqttPacket.IConnackPacket> {
      let session: RawSession | undefined;
      // Until the broker listens, the port refuses: try again, as a client would.
      for (const deadline = Date.now() + 5000; !session; await delay(50))
        session = await RawSession.open(port).catch((error: Error) => {
          if (Date.now() > deadline) throw error;
          return undefined;
        });
      try {
        session.send(
          mqttPacket.generate(
            { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, ...fields },
            { protocolVersion: 5 },
          ),
        );
        await session.whenClosed;
        const parser = mqttPacket.parser({ protocolVersion: 5 });
        const parsed: mqttPacket.Packet[] = [];
        parser.on('packet', (p) => parsed.push(p));
        parser.parse(session.received);
        assert.equal(parsed[0]?.cmd, 'connack', session.received.toString('hex'));
        return parsed[0] as mqttPacket.IConnackPacket;
      } finally {
        session.destroy();
      }
    }

    it('[MQTT-3.1.2-29] [3.2.2.3.9] [3.4.2.2.2] says why it refuses in a Reason String: on a refused CONNACK, and on the refusals of a client that leaves problem information on', async () => {
      await securedBroker();
      const badPassword = await rawConnack({
        clientId: 'wrong',
        username: 'admin',
        password: Buffer.from('no'),
      });
      assert.equal(badPassword.reasonCode, 0x86);
      assert.equal(badPassword.properties?.reasonString, 'bad user name or password');
      const anonymous = await rawConnack({ clientId: 'nobody' });
      assert.equal(anonymous.reasonCode, 0x87);
      assert.equal(anonymous.properties?.reasonString, 'not authorized');
      const packets = await refusalsSeen(true);
      const refusals = packets
        .filter((p) => ['puback', 'pubrec', 'suback'].includes(p.cmd))
        .map((p) => [p.cmd, (p as { properties?: { reasonString?: string } }).properties?.reasonString]);
      assert.deepEqual(refusals, [
        ['puback', 'not authorized to publish to this topic'],
        ['pubrec', 'not authorized to publish to this topic'],
        ['puback', 'not authorized to publish to this topic'],
        ['suback', 'not authorized to subscribe to a filter refused (0x87)'],
      ]);
    });

    it('[MQTT-3.1.2-29] sends no Reason String or User Property but on PUBLISH, CONNACK and DISCONNECT to a client with Request Problem Information 0', async () => {
      await securedBroker();
      const packets = await refusalsSeen(false);
      const acknowledgments = packets.filter((p) =>
        ['puback', 'pubrec', 'suback', 'unsuback'].includes(p.cmd),
      );
      // Each refused, with its reason code and, as the broker sends to any client, no Reason String.
      assert.deepEqual(
        acknowledgments.map((p) => [
          p.cmd,
          (p as { reasonCode?: number }).reasonCode ?? (p as { granted?: number[] }).granted,
        ]),
        [
          ['puback', 0x87],
          ['pubrec', 0x87],
          ['puback', 0x87],
          ['suback', [0x87]],
          ['unsuback', [0x11]],
        ],
      );
      for (const packet of packets) {
        if (['publish', 'connack', 'disconnect'].includes(packet.cmd)) continue;
        const properties = (packet as { properties?: Record<string, unknown> }).properties ?? {};
        assert.equal(properties.reasonString, undefined, `${packet.cmd}: ${JSON.stringify(properties)}`);
        assert.equal(properties.userProperties, undefined, `${packet.cmd}: ${JSON.stringify(properties)}`);
      }
    });
  });
});
