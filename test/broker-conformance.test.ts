/**
 * The embedded broker against the server-side statements of MQTT 3.1.1, with
 * real bytes over a real TCP socket. Each case names the statement it checks.
 * Cases marked "(parser)" are enforced by mqtt-packet already: they are here so
 * that the whole list stays true whatever sits between the socket and Aedes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import { hashPassword } from '../nodes/lib/broker/passwords.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper } from './support/node-red.js';
import { freePort } from './support/ports.js';
import {
  CONNACK_ACCEPTED,
  RawSession,
  connect,
  field,
  packet,
  publish,
  subscribe,
  uint16,
  unsubscribe,
} from './support/raw-mqtt.js';
import { delay, waitFor } from './support/wait.js';

const SURROGATE = Buffer.from([0x61, 0xed, 0xa0, 0x80]); // "a" and U+D800 encoded: not UTF-8
const ILL_FORMED = Buffer.from([0x61, 0xff]);
const WITH_NUL = Buffer.from([0x61, 0x00, 0x62]);
const CLOSE_WITHIN_MS = 3000;

/** Cases sent after an accepted CONNECT: the broker must close the connection. */
const AFTER_CONNECT: [rule: string, what: string, bytes: Buffer][] = [
  ['MQTT-1.5.3-1', 'a topic name with an unpaired surrogate', publish(SURROGATE)],
  ['MQTT-1.5.3-1', 'a topic name that is not UTF-8', publish(ILL_FORMED)],
  ['MQTT-1.5.3-2', 'a topic name with U+0000', publish(WITH_NUL, { qos: 1 })],
  ['MQTT-1.5.3-1', 'a subscription filter with an unpaired surrogate', subscribe(1, [[SURROGATE, 0]])],
  [
    'MQTT-1.5.3-2',
    'a subscription filter with U+0000',
    subscribe(1, [
      ['ok', 0],
      [WITH_NUL, 1],
    ]),
  ],
  ['MQTT-1.5.3-1', 'an unsubscription filter that is not UTF-8', unsubscribe(1, [ILL_FORMED])],
  ['MQTT-1.5.3-2', 'an unsubscription filter with U+0000', unsubscribe(1, [WITH_NUL])],
  ['MQTT-2.3.1-1', 'a QoS 1 PUBLISH with packet identifier 0', publish('t', { qos: 1, packetId: 0 })],
  ['MQTT-2.3.1-1', 'a QoS 2 PUBLISH with packet identifier 0', publish('t', { qos: 2, packetId: 0 })],
  ['MQTT-2.3.1-1', 'a SUBSCRIBE with packet identifier 0', subscribe(0, [['t', 0]])],
  ['MQTT-2.3.1-1', 'an UNSUBSCRIBE with packet identifier 0', unsubscribe(0, ['t'])],
  ['MQTT-2.3.1-1', 'a PUBACK with packet identifier 0', packet(0x40, uint16(0))],
  ['MQTT-2.3.1-1', 'a PUBREC with packet identifier 0', packet(0x50, uint16(0))],
  ['MQTT-2.3.1-1', 'a PUBREL with packet identifier 0', packet(0x62, uint16(0))],
  ['MQTT-2.3.1-1', 'a PUBCOMP with packet identifier 0', packet(0x70, uint16(0))],
  ['MQTT-3.8.3-3', 'a SUBSCRIBE without a topic filter', packet(0x82, uint16(1))],
  ['MQTT-3.10.3-2', 'an UNSUBSCRIBE without a topic filter', packet(0xa2, uint16(1))],
  ['3.4.1', 'a PUBACK of remaining length 3', packet(0x40, uint16(1), Buffer.from([0]))],
  ['3.4.1', 'a PUBACK of remaining length 1', packet(0x40, Buffer.from([1]))],
  ['3.5.1', 'a PUBREC of remaining length 0', packet(0x50)],
  ['3.6.1', 'a PUBREL of remaining length 4', packet(0x62, uint16(1), uint16(2))],
  ['3.7.1', 'a PUBCOMP of remaining length 3', packet(0x70, uint16(1), Buffer.from([9]))],
  ['3.12.1', 'a PINGREQ with a payload', packet(0xc0, Buffer.from([1]))],
  ['3.14.1', 'a DISCONNECT with a payload', packet(0xe0, Buffer.from([1]))],
  ['MQTT-4.8.0-1', 'a CONNACK, which only a server sends', packet(0x20, Buffer.from([0, 0]))],
  ['MQTT-4.8.0-1', 'a SUBACK, which only a server sends', packet(0x90, uint16(1), Buffer.from([0]))],
  ['MQTT-4.8.0-1', 'an UNSUBACK, which only a server sends', packet(0xb0, uint16(1))],
  ['MQTT-4.8.0-1', 'a PINGRESP, which only a server sends', packet(0xd0)],
  ['MQTT-4.8.0-1', 'the reserved packet type 0', packet(0x00)],
  ['MQTT-4.8.0-1', 'the reserved packet type 15', packet(0xf0)],
  ['MQTT-3.1.0-2', 'a second CONNECT', connect({ clientId: 'again' })],
  ['MQTT-2.2.3', 'a remaining length of five bytes', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
  ['MQTT-2.2.2-2', 'a PUBREL with flags 0000', packet(0x60, uint16(1))],
  ['MQTT-2.2.2-2', 'a SUBSCRIBE with flags 0000', packet(0x80, uint16(1), field('t'), Buffer.from([0]))],
  ['MQTT-2.2.2-2', 'an UNSUBSCRIBE with flags 0000', packet(0xa0, uint16(1), field('t'))],
  ['MQTT-2.2.2-2', 'a PINGREQ with flags 0001', packet(0xc1)],
  ['MQTT-3.3.1-4', 'a PUBLISH with QoS 3', publish('t', { flags: 0x06, packetId: 1 })],
  ['MQTT-3.3.1-2', 'a QoS 0 PUBLISH with DUP set', publish('t', { flags: 0x08 })],
  ['MQTT-3.8.3-4 (parser)', 'a SUBSCRIBE with a reserved option bit set', subscribe(1, [['t', 0x04]])],
  ['MQTT-3.8.3-4 (parser)', 'a SUBSCRIBE asking QoS 3', subscribe(1, [['t', 0x03]])],
  ['MQTT-3.3.2-2', 'a topic name with +', publish('a/+/b')],
  ['MQTT-3.3.2-2', 'a topic name with #', publish('a/#')],
  ['MQTT-4.7.3-1', 'an empty topic name', publish('')],
  ['MQTT-4.7.3-1', 'an empty topic filter', subscribe(1, [['', 0]])],
  ['MQTT-4.7.1-2', 'a filter with # before its last level', subscribe(1, [['a/#/b', 0]])],
  ['MQTT-4.7.1-3', 'a filter with + inside a level', subscribe(1, [['a+/b', 0]])],
];

/** CONNECT cases: the broker closes, after a CONNACK with this code when there is one. */
const CONNECTS: [rule: string, what: string, bytes: Buffer, connackCode?: number][] = [
  ['MQTT-3.1.0-1', 'a first packet that is not a CONNECT', packet(0xc0)],
  [
    'MQTT 3.1: 3.1',
    'an empty client id on MQTT 3.1',
    connect({ clientId: '', protocolName: 'MQIsdp', level: 3 }),
    2,
  ],
  ['MQTT-1.5.3-1', 'a client id with an unpaired surrogate', connect({ clientId: SURROGATE })],
  ['MQTT-1.5.3-2', 'a client id with U+0000', connect({ clientId: WITH_NUL })],
  ['MQTT-1.5.3-1', 'a will topic that is not UTF-8', connect({ clientId: 'w', will: { topic: ILL_FORMED } })],
  ['MQTT-1.5.3-2', 'a will topic with U+0000', connect({ clientId: 'w', will: { topic: WITH_NUL } })],
  ['MQTT-1.5.3-1', 'a user name with an unpaired surrogate', connect({ clientId: 'u', username: SURROGATE })],
  ['MQTT-1.5.3-2', 'a user name with U+0000', connect({ clientId: 'u', username: WITH_NUL })],
  ['MQTT-3.1.2-14', 'a will QoS of 3', connect({ clientId: 'w', will: { topic: 'w', qos: 3 } })],
  ['MQTT-3.1.2-18', 'a user name without its flag', connect({ clientId: 'u', extra: field('user') })],
  [
    'MQTT-3.1.2-20',
    'a password without its flag',
    connect({ clientId: 'u', username: 'user', extra: field('secret') }),
  ],
  [
    'MQTT-3.1.2-22',
    'a password flag without a user name flag',
    connect({ clientId: 'u', flags: 0x42, extra: field('secret') }),
  ],
  ['MQTT-3.1.3-8', 'an empty client id with clean session 0', connect({ clientId: '', clean: false }), 2],
  ['MQTT-3.1.2-2', 'protocol level 6', connect({ clientId: 'l', level: 6 }), 1],
  ['MQTT-3.1.2-3 (parser)', 'the reserved connect flag set', connect({ clientId: 'r', flags: 0x03 })],
  ['MQTT-3.1.2-13 (parser)', 'a will QoS without the will flag', connect({ clientId: 'r', flags: 0x0a })],
  ['MQTT-3.1.2-15 (parser)', 'a will retain without the will flag', connect({ clientId: 'r', flags: 0x22 })],
  ['MQTT-3.1.2-1 (parser)', 'an unknown protocol name', connect({ clientId: 'p', protocolName: 'MQTX' })],
];

describe('embedded broker: MQTT 3.1.1 server conformance, byte by byte', () => {
  let port: number;
  let honest: mqtt.MqttClient;
  const honestReceived: string[] = [];
  let sessions = 0;

  /** A raw session that has sent a CONNECT and got it accepted. */
  async function connected(): Promise<RawSession> {
    const session = await RawSession.open(port);
    session.send(connect({ clientId: `raw-${++sessions}` }));
    assert.deepEqual(await session.receive(4), CONNACK_ACCEPTED);
    session.received = Buffer.alloc(0);
    return session;
  }

  before(async () => {
    port = await freePort();
    await helper.startServer();
    await helper.load(allNodes, [embeddedBrokerNode(port)]);
    honest = await connectWhenListening(port, { clientId: 'honest' });
    honest.on('message', (topic, payload) => honestReceived.push(`${topic}=${payload}`));
    await honest.subscribeAsync('#', { qos: 1 });
  });
  after(async () => {
    await honest.endAsync(true);
    await helper.unload();
    await helper.stopServer();
  });

  for (const [rule, what, bytes] of AFTER_CONNECT) {
    it(`[${rule}] closes the connection on ${what}`, async () => {
      const session = await connected();
      session.send(bytes);
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), 'the connection is still open');
      assert.equal(session.received.length, 0, `answered ${session.received.toString('hex')}`);
    });
  }

  for (const [rule, what, bytes, connackCode] of CONNECTS) {
    const answer = connackCode === undefined ? 'without a CONNACK' : `after CONNACK ${connackCode}`;
    it(`[${rule}] closes the connection ${answer} on ${what}`, async () => {
      const session = await RawSession.open(port);
      session.send(bytes);
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), 'the connection is still open');
      const expected =
        connackCode === undefined ? Buffer.alloc(0) : Buffer.from([0x20, 0x02, 0x00, connackCode]);
      assert.deepEqual(session.received, expected);
    });
  }

  it('judges a packet by its first byte as soon as it arrives, without waiting for the rest', async () => {
    for (const [what, firstByte] of [
      ['the reserved packet type 15', 0xf0],
      ['a QoS 0 PUBLISH with DUP set', 0x38],
      ['a SUBSCRIBE with flags 0000', 0x80],
    ] as const) {
      const session = await connected();
      session.send(Buffer.from([firstByte]));
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), `still open after the first byte of ${what}`);
    }
    const unconnected = await RawSession.open(port);
    unconnected.send(Buffer.from([0xc0]));
    assert.ok(
      await unconnected.closesWithin(CLOSE_WITHIN_MS),
      'still open after a first byte that is no CONNECT',
    );
  });

  it('[MQTT-3.1.4-5] processes nothing sent after a CONNECT it refuses', async () => {
    const session = await RawSession.open(port);
    session.send(connect({ clientId: WITH_NUL }), publish('honest/after-refused-connect', { qos: 0 }));
    assert.ok(await session.closesWithin(CLOSE_WITHIN_MS));
    await delay(200);
    assert.ok(!honestReceived.some((entry) => entry.startsWith('honest/after-refused-connect')));
  });

  it('[MQTT-3.1.4-2] disconnects the client already connected with the same client id', async () => {
    const first = await RawSession.open(port);
    first.send(connect({ clientId: 'twin' }));
    await first.receive(4);
    const second = await RawSession.open(port);
    second.send(connect({ clientId: 'twin' }));
    assert.ok(await first.closesWithin(CLOSE_WITHIN_MS), 'the first connection is closed');
    assert.deepEqual(await second.receive(4), CONNACK_ACCEPTED);
    second.destroy();
  });

  it('[MQTT-3.1.2-24] disconnects a client silent for one and a half keep alive periods', async () => {
    const session = await RawSession.open(port);
    session.send(connect({ clientId: 'sleepy', keepalive: 1 }));
    await session.receive(4);
    const started = Date.now();
    assert.ok(await session.closesWithin(CLOSE_WITHIN_MS));
    const waited = Date.now() - started;
    assert.ok(waited >= 1400, `closed after ${waited} ms`);
  });

  it('[MQTT-3.1.3-5] [MQTT-3.1.3-6] accepts a 23-character alphanumeric client id, and an empty one with clean session 1', async () => {
    for (const clientId of ['abcdefghijklmnopqrstuvw', '']) {
      const session = await RawSession.open(port);
      session.send(connect({ clientId }));
      assert.deepEqual(await session.receive(4), CONNACK_ACCEPTED);
      session.destroy();
    }
  });

  it('[MQTT-3.12.4-1] answers PINGREQ with PINGRESP', async () => {
    const session = await connected();
    session.send(packet(0xc0));
    assert.deepEqual(await session.receive(2), Buffer.from([0xd0, 0x00]));
    session.destroy();
  });

  it('[MQTT-3.8.4-1] [MQTT-2.3.1-7] [MQTT-3.10.4-5] acknowledges SUBSCRIBE and UNSUBSCRIBE with their packet identifiers, even for a filter never subscribed', async () => {
    const session = await connected();
    session.send(subscribe(0x1234, [['x/y', 1]]));
    assert.deepEqual(await session.receive(5), Buffer.from([0x90, 0x03, 0x12, 0x34, 0x01]));
    session.received = Buffer.alloc(0);
    session.send(unsubscribe(0x4321, ['never/subscribed']));
    assert.deepEqual(await session.receive(4), Buffer.from([0xb0, 0x02, 0x43, 0x21]));
    session.destroy();
  });

  it('[MQTT-3.14.4-3] discards the will of a client that sends DISCONNECT', async () => {
    const session = await RawSession.open(port);
    session.send(connect({ clientId: 'polite', will: { topic: 'honest/will/polite', qos: 0 } }));
    await session.receive(4);
    session.send(packet(0xe0));
    assert.ok(await session.closesWithin(CLOSE_WITHIN_MS));
    const rude = await RawSession.open(port);
    rude.send(connect({ clientId: 'rude', will: { topic: 'honest/will/rude', qos: 0 } }));
    await rude.receive(4);
    rude.destroy();
    await waitFor(
      () => honestReceived.some((entry) => entry.startsWith('honest/will/rude')),
      'the rude will',
    );
    assert.ok(!honestReceived.some((entry) => entry.startsWith('honest/will/polite')));
  });

  it('[MQTT-1.5.3-3] keeps a leading U+FEFF in a topic name', async () => {
    const session = await connected();
    session.send(publish('\uFEFFhonest/bom', { payload: Buffer.from('kept') }));
    await waitFor(() => honestReceived.includes('\uFEFFhonest/bom=kept'), 'the message on its topic');
    session.destroy();
  });

  it('[MQTT-4.3.3-2] publishes a QoS 2 PUBLISH sent again before its PUBREL once, and its identifier after the PUBCOMP as a new message', async () => {
    const session = await connected();
    const pubrec = Buffer.from([0x50, 0x02, 0x00, 7]);
    const pubcomp = Buffer.from([0x70, 0x02, 0x00, 7]);
    session.send(publish('honest/exactly-once', { qos: 2, packetId: 7, payload: Buffer.from('first') }));
    assert.deepEqual(await session.receive(4), pubrec);
    // The same packet again with DUP set, as a client that lost the PUBREC sends it.
    session.send(
      publish('honest/exactly-once', { qos: 2, packetId: 7, flags: 0x0c, payload: Buffer.from('first') }),
    );
    assert.deepEqual(await session.receive(8), Buffer.concat([pubrec, pubrec]));
    session.send(packet(0x62, uint16(7)));
    assert.deepEqual(await session.receive(12), Buffer.concat([pubrec, pubrec, pubcomp]));
    // A PUBREL for an identifier the broker no longer holds is still answered [MQTT-4.3.3-2].
    session.send(packet(0x62, uint16(7)));
    assert.deepEqual(await session.receive(16), Buffer.concat([pubrec, pubrec, pubcomp, pubcomp]));
    session.send(publish('honest/exactly-once', { qos: 2, packetId: 7, payload: Buffer.from('second') }));
    assert.deepEqual(await session.receive(20), Buffer.concat([pubrec, pubrec, pubcomp, pubcomp, pubrec]));
    await waitFor(() => honestReceived.includes('honest/exactly-once=second'), 'the second message');
    assert.deepEqual(
      honestReceived.filter((entry) => entry.startsWith('honest/exactly-once')),
      ['honest/exactly-once=first', 'honest/exactly-once=second'],
    );
    session.destroy();
  });

  it('[MQTT-3.1.2-6] forgets the QoS 2 publications a clean session left unreleased: the next session reuses their identifiers', async () => {
    const first = await RawSession.open(port);
    first.send(connect({ clientId: 'half-open' }));
    await first.receive(4);
    first.send(publish('honest/qos2', { qos: 2, packetId: 42, payload: Buffer.from('never released') }));
    assert.deepEqual(
      await first.receive(8),
      Buffer.concat([CONNACK_ACCEPTED, Buffer.from([0x50, 0x02, 0x00, 42])]),
    );
    first.destroy();
    await first.whenClosed;
    await delay(200);
    const second = await RawSession.open(port);
    second.send(connect({ clientId: 'half-open' }));
    await second.receive(4);
    second.send(publish('honest/qos2', { qos: 2, packetId: 42, payload: Buffer.from('second session') }));
    await second.receive(8);
    second.send(packet(0x62, uint16(42)));
    await second.receive(12);
    await waitFor(
      () => honestReceived.includes('honest/qos2=second session'),
      "the second session's message",
    );
    second.destroy();
  });

  it('[MQTT-3.3.1-1] sets DUP on a message it sends again to a session, not on one queued while the client was away', async () => {
    const session = { clientId: 'redelivered', clean: false, reconnectPeriod: 0 };
    const first = await connectWhenListening(port, session);
    await first.subscribeAsync('dup/t', { qos: 1 });
    // No PUBACK: the message stays in flight, to be sent again to the next connection of the session.
    let arrived = false;
    first.handleMessage = (_packet, _callback) => {
      arrived = true;
    };
    await honest.publishAsync('dup/t', 'sent before', { qos: 1 });
    await waitFor(() => arrived, 'the first copy');
    first.end(true);
    await honest.publishAsync('dup/t', 'queued while away', { qos: 1 });
    const second = await connectWhenListening(port, session);
    const copies: { payload: string; dup: boolean }[] = [];
    second.on('packetreceive', (received) => {
      if (received.cmd === 'publish') copies.push({ payload: String(received.payload), dup: received.dup });
    });
    await waitFor(() => copies.length === 2, 'both messages');
    assert.deepEqual(copies, [
      { payload: 'sent before', dup: true },
      { payload: 'queued while away', dup: false },
    ]);
    await second.endAsync();
  });

  it('stays up for client ids and topic filters named like properties every object has (GHSA-52qw-whmv-87c5)', async () => {
    for (const clientId of ['constructor', '__proto__', 'toString']) {
      const session = await RawSession.open(port);
      session.send(connect({ clientId }));
      assert.deepEqual(await session.receive(4), CONNACK_ACCEPTED, clientId);
      session.received = Buffer.alloc(0);
      // One filter per SUBSCRIBE: Aedes 2.0.0-beta.1 closes on `__proto__` among several (README, known limits).
      for (const [index, filter] of ['constructor', '__proto__', 'hasOwnProperty'].entries()) {
        session.send(subscribe(index + 1, [[filter, 0]]));
        assert.deepEqual(await session.receive(5), Buffer.from([0x90, 0x03, 0x00, index + 1, 0]), filter);
        session.received = Buffer.alloc(0);
      }
      // A second session with the same id takes the first over, by the same map.
      const twin = await RawSession.open(port);
      twin.send(connect({ clientId }));
      assert.deepEqual(await twin.receive(4), CONNACK_ACCEPTED, clientId);
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), `the first ${clientId} is taken over`);
      twin.destroy();
    }
  });

  it('[1.5.3] takes control characters other than U+0000 by default, as MQTT allows them', async () => {
    const session = await RawSession.open(port);
    session.send(connect({ clientId: Buffer.from('bell\u0007') }));
    assert.deepEqual(await session.receive(4), CONNACK_ACCEPTED);
    session.received = Buffer.alloc(0);
    session.send(subscribe(1, [[Buffer.from('tab\u0009/+'), 0]]));
    assert.deepEqual(await session.receive(5), Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00]));
    session.destroy();
  });

  it('kept the honest client connected and served through every case above', async () => {
    assert.ok(honest.connected);
    await honest.publishAsync('honest/still-here', 'yes', { qos: 1 });
    await waitFor(() => honestReceived.includes('honest/still-here=yes'), 'its own message');
  });
});

describe('embedded broker: a refused publication is acknowledged after the CONNACK', () => {
  let port: number;

  before(async () => {
    port = await freePort();
    await helper.startServer();
    const hash = await hashPassword('secret');
    await helper.load(
      allNodes,
      [embeddedBrokerNode(port, { accounts: [{ username: 'u', publish: ['allowed/#'], subscribe: ['#'] }] })],
      { [EMBEDDED_BROKER_ID]: { passwords: JSON.stringify({ u: hash }) } },
    );
    await connectWhenListening(port, { username: 'u', password: 'secret' }).then((client) =>
      client.endAsync(),
    );
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
  });

  it('[MQTT-3.2.0-1] sends the CONNACK first even when a refused PUBLISH came in the same segment', async () => {
    const session = await RawSession.open(port);
    session.send(
      connect({ clientId: 'pipelined', username: 'u', password: 'secret' }),
      publish('forbidden/x', { qos: 1, packetId: 7 }),
    );
    // The password check takes a moment: the PUBACK for the dropped PUBLISH must wait for it.
    assert.deepEqual(
      await session.receive(8),
      Buffer.concat([CONNACK_ACCEPTED, Buffer.from([0x40, 0x02, 0x00, 0x07])]),
    );
    session.destroy();
  });

  it('[MQTT-3.2.2-5] [MQTT-3.1.4-5] answers nothing but CONNACK 4 to a wrong password, even for a pipelined PUBLISH', async () => {
    const session = await RawSession.open(port);
    session.send(
      connect({ clientId: 'pipelined-wrong', username: 'u', password: 'wrong' }),
      publish('forbidden/x', { qos: 1, packetId: 8 }),
    );
    assert.ok(await session.closesWithin(CLOSE_WITHIN_MS));
    assert.deepEqual(session.received, Buffer.from([0x20, 0x02, 0x00, 0x04]));
  });
});

describe('embedded broker: control characters refused when asked (as Mosquitto)', () => {
  let port: number;
  before(async () => {
    port = await freePort();
    await helper.startServer();
    await helper.load(allNodes, [embeddedBrokerNode(port, { refuseControlCharacters: true })]);
    await connectWhenListening(port, { clientId: 'warm-up' }).then((client) => client.endAsync());
  });
  after(async () => {
    await helper.unload();
    await helper.stopServer();
  });

  const CONTROL = Buffer.from('a\u0007b');
  const C1_CONTROL = Buffer.from('a\u0085b');
  for (const [what, bytes] of [
    ['a topic name with U+0007', publish(CONTROL)],
    ['a topic name with U+0085', publish(C1_CONTROL)],
    ['a subscription filter with U+001B', subscribe(1, [[Buffer.from('a/\u001b'), 0]])],
    ['an unsubscription filter with U+007F', unsubscribe(1, [Buffer.from('a\u007f')])],
  ] as const) {
    it(`closes the connection on ${what}`, async () => {
      const session = await RawSession.open(port);
      session.send(connect({ clientId: 'controlled' }));
      assert.deepEqual(await session.receive(4), CONNACK_ACCEPTED);
      session.send(bytes);
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), 'the connection is still open');
    });
  }

  for (const [what, spec] of [
    ['a client id with U+0001', { clientId: Buffer.from('x\u0001') }],
    ['a user name with U+009F', { clientId: 'u', username: Buffer.from('n\u009f') }],
  ] as const) {
    it(`closes the connection without a CONNACK on ${what}`, async () => {
      const session = await RawSession.open(port);
      session.send(connect(spec));
      assert.ok(await session.closesWithin(CLOSE_WITHIN_MS), 'the connection is still open');
      assert.equal(session.received.length, 0);
    });
  }

  it('takes other characters, é and emoji included', async () => {
    const client = await connectWhenListening(port, { clientId: 'café-☕' });
    await client.subscribeAsync('menu/crème-brûlée/😀', { qos: 1 });
    await client.publishAsync('menu/crème-brûlée/😀', 'ok', { qos: 1 });
    assert.ok(client.connected);
    await client.endAsync();
  });
});
