/**
 * What the embedded broker tells MQTT 5 clients of its limits, and how it holds to theirs: the
 * CONNACK's Maximum Packet Size and Server Keep Alive, the client's Maximum Packet Size, and the Topic
 * Aliases it gives the topics it sends. Real TCP, MQTT.js 5 clients and raw sessions that read every
 * packet as sent; each case names the statement of the OASIS MQTT 5.0 specification it checks.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { connectWhenListening } from './support/embedded-broker.js';
import { embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper, loggedLines } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

const V5 = { protocolVersion: 5 } as const;

/** A raw MQTT 5 connection that records every packet the broker sends, as sent. */
class RawV5 {
  readonly packets: mqttPacket.Packet[] = [];
  /** The bytes the broker sent, as they came. */
  received = Buffer.alloc(0);
  closed = false;
  private constructor(private readonly socket: net.Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (packet) => this.packets.push(packet));
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      parser.parse(chunk);
    });
    socket.on('error', () => undefined);
    socket.once('close', () => (this.closed = true));
  }

  /** Connects with `connect`'s fields and waits for the CONNACK. */
  static async open(port: number, connect: Partial<mqttPacket.IConnectPacket>): Promise<RawV5> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const opened = net.connect(port, '127.0.0.1', () => resolve(opened));
      opened.once('error', reject);
    });
    const session = new RawV5(socket);
    session.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'raw',
      clean: true,
      keepalive: 0,
      ...connect,
    });
    await waitFor(() => session.packets.some((p) => p.cmd === 'connack'), 'the CONNACK');
    return session;
  }

  send(packet: mqttPacket.Packet): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    this.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] });
    await waitFor(() => this.packets.some((p) => p.cmd === 'suback'), 'the SUBACK');
  }

  get publishes(): mqttPacket.IPublishPacket[] {
    return this.packets.filter((p): p is mqttPacket.IPublishPacket => p.cmd === 'publish');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Each PUBLISH as [topic as sent, topic alias]. */
function topicsAndAliases(publishes: mqttPacket.IPublishPacket[]): [string, number | undefined][] {
  return publishes.map((p) => [String(p.topic), p.properties?.topicAlias]);
}

describe('embedded broker: the limits MQTT 5 clients are told and held to', () => {
  let port: number;
  before(async () => {
    await helper.startServer();
  });
  after(() => helper.stopServer());

  const clients: mqtt.MqttClient[] = [];
  const raws: RawV5[] = [];
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.destroy();
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await helper.unload();
  });

  async function openBroker(properties: Record<string, unknown> = {}) {
    port = await freePort();
    await helper.load(allNodes, [embeddedBrokerNode(port, properties)]);
  }

  async function client(options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
    const connected = await connectWhenListening(port, { ...V5, ...options });
    clients.push(connected);
    return connected;
  }

  async function raw(connect: Partial<mqttPacket.IConnectPacket> = {}): Promise<RawV5> {
    await connectWhenListening(port).then((probe) => probe.endAsync(true));
    const session = await RawV5.open(port, connect);
    raws.push(session);
    return session;
  }

  function connackOf(session: RawV5): mqttPacket.IConnackPacket {
    return session.packets.find((p) => p.cmd === 'connack') as mqttPacket.IConnackPacket;
  }

  it("[MQTT-3.2.2-15] tells an MQTT 5 network client the broker's Maximum Packet Size in the CONNACK", async () => {
    await openBroker({ maxPacketSize: 4096 });
    const session = await raw();
    assert.equal(connackOf(session).reasonCode, 0);
    assert.equal(connackOf(session).properties?.maximumPacketSize, 4096);
  });

  it("[MQTT-3.1.2-24] [MQTT-3.1.2-25] does not send a message larger than the client's Maximum Packet Size, takes it as sent, and logs it", async () => {
    await openBroker();
    const session = { clientId: 'small-packets', clean: false, properties: { sessionExpiryInterval: 60 } };
    const small = await client({ ...session, properties: { ...session.properties, maximumPacketSize: 200 } });
    const received: string[] = [];
    small.on('message', (topic) => received.push(topic));
    await small.subscribeAsync('sizes/#', { qos: 1 });
    const publisher = await client({ clientId: 'sizes-publisher' });
    await publisher.publishAsync('sizes/large', Buffer.alloc(500, 1), { qos: 1 });
    await publisher.publishAsync('sizes/small', 'fits', { qos: 1 });
    await waitFor(() => received.includes('sizes/small'), 'the message that fits');
    assert.deepEqual(received, ['sizes/small']);
    await waitFor(
      () => loggedLines('warn').some((line) => /small-packets.*200 bytes.*sizes\/large/.test(line)),
      'the warning that names the client, its maximum and the topic',
    );
    // Taken as sent: not queued for the session, so not sent again when it resumes.
    await small.endAsync();
    const resumed = await client(session);
    const resent: string[] = [];
    resumed.on('message', (topic) => resent.push(topic));
    await publisher.publishAsync('sizes/after', 'marker', { qos: 1 });
    await waitFor(() => resent.includes('sizes/after'), 'the message after the resume');
    assert.deepEqual(resent, ['sizes/after']);
  });

  it('[MQTT-3.2.2-21] [MQTT-3.2.2-22] with a max keep alive, tells an MQTT 5 client asking more, or none, the Server Keep Alive, and holds it to it', async () => {
    await openBroker({ maxKeepAlive: 2 });
    const asksMore = await raw({ clientId: 'asks-more', keepalive: 60 });
    const asksNone = await raw({ clientId: 'asks-none', keepalive: 0 });
    const asksLess = await raw({ clientId: 'asks-less', keepalive: 1 });
    assert.equal(connackOf(asksMore).properties?.serverKeepAlive, 2);
    assert.equal(connackOf(asksNone).properties?.serverKeepAlive, 2);
    assert.equal(connackOf(asksLess).properties?.serverKeepAlive, undefined);
    // Silent for one and a half times the keep-alive in force: closed [MQTT-3.1.2-22 of the keep-alive].
    await waitFor(() => asksMore.closed && asksNone.closed, 'both silent connections closed', 6000);
  });

  it('with a max keep alive, keeps the keep-alive of an MQTT 3.1.1 client asking more, which it cannot tell (as Mosquitto)', async () => {
    await openBroker({ maxKeepAlive: 1 });
    const v311 = await client({ protocolVersion: 4, clientId: 'v311-keepalive', keepalive: 60 });
    await delay(2500);
    assert.ok(v311.connected, 'the MQTT 3.1.1 client was disconnected');
  });

  it('[MQTT-3.1.2-26] [MQTT-3.3.2-11] gives the first topics sent to a client aliases within its Topic Alias Maximum, then sends the alias alone', async () => {
    await openBroker();
    const session = await raw({ clientId: 'aliased', properties: { topicAliasMaximum: 2 } });
    await session.subscribe('alias/#', 0);
    const publisher = await client({ clientId: 'alias-publisher' });
    for (const topic of ['alias/a', 'alias/a', 'alias/b', 'alias/c', 'alias/b', 'alias/c'])
      await publisher.publishAsync(topic, topic, { qos: 1 });
    await waitFor(() => session.publishes.length === 6, 'the six messages');
    assert.deepEqual(topicsAndAliases(session.publishes), [
      ['alias/a', 1],
      ['', 1],
      ['alias/b', 2],
      ['alias/c', undefined],
      ['', 2],
      ['alias/c', undefined],
    ]);
    // MQTT.js, which resolves aliases, reads every topic back.
    const resolving = await client({ clientId: 'resolving', properties: { topicAliasMaximum: 4 } });
    const topics: string[] = [];
    resolving.on('message', (topic) => topics.push(topic));
    await resolving.subscribeAsync('alias/#', { qos: 1 });
    for (const topic of ['alias/x', 'alias/x', 'alias/y'])
      await publisher.publishAsync(topic, topic, { qos: 1 });
    await waitFor(() => topics.length === 3, 'the three messages');
    assert.deepEqual(topics, ['alias/x', 'alias/x', 'alias/y']);
  });

  it('[MQTT-3.4.2-1] [MQTT-3.5.2-1] acknowledges a publication in the short form, without Reason Code and Property Length, when it succeeded', async () => {
    await openBroker();
    const session = await raw({ clientId: 'short-acks' });
    session.send({
      cmd: 'publish',
      topic: 'acks/one',
      payload: 'x',
      qos: 1,
      messageId: 7,
      retain: false,
      dup: false,
    });
    session.send({
      cmd: 'publish',
      topic: 'acks/two',
      payload: 'x',
      qos: 2,
      messageId: 8,
      retain: false,
      dup: false,
    });
    await waitFor(() => session.packets.some((p) => p.cmd === 'pubrec'), 'the PUBREC');
    await waitFor(() => session.packets.some((p) => p.cmd === 'puback'), 'the PUBACK');
    const bytes = [...session.received];
    const puback = [0x40, 0x02, 0x00, 0x07];
    const pubrec = [0x50, 0x02, 0x00, 0x08];
    const at = (sequence: number[]) =>
      bytes.findIndex((_, i) => sequence.every((byte, j) => bytes[i + j] === byte));
    assert.ok(at(puback) >= 0, `PUBACK of 4 bytes in ${session.received.toString('hex')}`);
    assert.ok(at(pubrec) >= 0, `PUBREC of 4 bytes in ${session.received.toString('hex')}`);
  });

  it('[MQTT-3.1.2-27] sends no alias to a client that gave no Topic Alias Maximum', async () => {
    await openBroker();
    const session = await raw({ clientId: 'no-aliases' });
    await session.subscribe('plain/#', 0);
    // The publisher's own aliases stay between it and the broker.
    const publisher = await client({ clientId: 'plain-publisher' });
    await publisher.publishAsync('plain/a', 'first', { qos: 1, properties: { topicAlias: 1 } });
    await publisher.publishAsync('', 'second', { qos: 1, properties: { topicAlias: 1 } });
    await waitFor(() => session.publishes.length === 2, 'the two messages');
    assert.deepEqual(topicsAndAliases(session.publishes), [
      ['plain/a', undefined],
      ['plain/a', undefined],
    ]);
  });

  for (const persistence of ['memory', 'disk'] as const) {
    it(`[MQTT-3.3.2-7] starts the aliases afresh on a new connection, and sends again what was unacknowledged with its topic name (${persistence})`, async () => {
      if (persistence === 'disk') helper.settings({ userDir: temporaryDirectory('durable-mqtt-aliases-') });
      await openBroker({ persistence });
      const session = {
        clientId: `resumed-${persistence}`,
        clean: false,
        properties: { topicAliasMaximum: 4, sessionExpiryInterval: 60 },
      };
      const first = await raw(session);
      await first.subscribe('resend/#', 1);
      const publisher = await client({ clientId: `resend-publisher-${persistence}` });
      // Never acknowledged by the raw session: kept for it, and sent again on its next connection.
      for (const topic of ['resend/a', 'resend/a']) await publisher.publishAsync(topic, topic, { qos: 1 });
      await waitFor(() => first.publishes.length === 2, 'the two messages');
      assert.deepEqual(topicsAndAliases(first.publishes), [
        ['resend/a', 1],
        ['', 1],
      ]);
      first.destroy();
      await delay(200);
      const second = await raw({ ...session, clean: false });
      await waitFor(() => second.publishes.length === 2, 'the two messages sent again');
      assert.deepEqual(topicsAndAliases(second.publishes), [
        ['resend/a', 1],
        ['', 1],
      ]);
      assert.ok(
        second.publishes.every((p) => p.dup),
        'sent again with DUP',
      );
    });
  }

  it('[MQTT-3.14.2.1 0x97] disconnects with Quota exceeded a connected client over the offline queue bound that acknowledges nothing, and bounds its queue as for a client away', async () => {
    await openBroker({ maxOfflineMessages: 3 });
    const session = {
      clientId: 'stalled',
      clean: false,
      keepalive: 1,
      properties: { sessionExpiryInterval: 60 },
    };
    // Takes every message and acknowledges none; pings, so that its keep-alive alone does not close it.
    const stalled = await raw(session);
    const pinging = setInterval(() => stalled.send({ cmd: 'pingreq' }), 400);
    pinging.unref();
    await stalled.subscribe('quota/#', 1);
    // Acknowledges as it reads: over the bound in a burst, never disconnected.
    const healthy = await client({ ...session, clientId: 'healthy' });
    let healthyReceived = 0;
    healthy.on('message', () => healthyReceived++);
    await healthy.subscribeAsync('quota/#', { qos: 1 });
    const publisher = await client({ clientId: 'quota-publisher' });
    const burst = Array.from({ length: 50 }, (_, i) => publisher.publishAsync(`quota/${i}`, 'x', { qos: 1 }));
    await Promise.all(burst);
    const disconnects = () =>
      stalled.packets.filter((p): p is mqttPacket.IDisconnectPacket => p.cmd === 'disconnect');
    assert.deepEqual(disconnects(), [], 'disconnected while within its keep-alive');
    // Quiet for longer than one and a half keep-alives: the next message tells it.
    await delay(1800);
    await publisher.publishAsync('quota/late', 'x', { qos: 1 });
    await waitFor(() => disconnects().length === 1 && stalled.closed, 'the DISCONNECT, then the close');
    clearInterval(pinging);
    assert.equal(disconnects()[0].reasonCode, 0x97);
    assert.match(String(disconnects()[0].properties?.reasonString), /more than 3 messages/);
    await waitFor(
      () => loggedLines('warn').some((line) => /stalled.*more than 3 messages.*0x97/.test(line)),
      'the warning',
    );
    for (let i = 0; i < 5; i++) await publisher.publishAsync('quota/away', String(i), { qos: 1 });
    await waitFor(() => healthyReceived === 56, 'every message to the healthy client');
    assert.ok(healthy.connected);
    // Away: its queue is trimmed to the bound, the newest kept.
    const back = await client({ ...session, keepalive: 60, clean: false });
    const payloads: string[] = [];
    back.on('message', (_topic, payload) => payloads.push(payload.toString()));
    await waitFor(() => payloads.length >= 3, 'the queued messages');
    await delay(300);
    assert.deepEqual(payloads, ['2', '3', '4']);
  });
});
