import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'mocha';
import type mqtt from 'mqtt';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper, type RuntimeNode } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';

/** Resolves once the client's connection has closed. */
function closed(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

function warningsOf(node: RuntimeNode): string[] {
  const warnings: string[] = [];
  node.on('call:warn', ((call: { args: [string] }) => warnings.push(call.args[0])) as never);
  return warnings;
}

async function brokerWith(limits: Record<string, unknown>) {
  const port = await freePort();
  await helper.load(allNodes, [embeddedBrokerNode(port, limits)]);
  return { port, warnings: warningsOf(helper.getNode(EMBEDDED_BROKER_ID)) };
}

describe('embedded broker limits: what a client over them sees', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('answers CONNACK 3 to one connection more than maxConnections, and lets one in again once a place is free', async () => {
    const { port, warnings } = await brokerWith({ maxConnections: 2 });
    const first = await connectWhenListening(port, { clientId: 'first' });
    const second = await connectWhenListening(port, { clientId: 'second' });
    await assert.rejects(connectWhenListening(port, { clientId: 'third' }), { code: 3 });
    // An MQTT 5 client gets the CONNACK in its own form: reason code 0x88, Server unavailable.
    await assert.rejects(connectWhenListening(port, { clientId: 'third', protocolVersion: 5 }), {
      code: 0x88,
    });
    assert.match(warnings[0] ?? '', /more than 2 connections \(CONNACK 3\)/);
    await first.endAsync();
    await waitFor(async () => {
      try {
        await (await connectWhenListening(port, { clientId: 'third' })).endAsync();
        return true;
      } catch {
        return false;
      }
    }, 'a place for the third client');
    await second.endAsync();
  });

  it('closes the connection of a client that sends a packet larger than maxPacketSize, and takes one at the size', async () => {
    const { port, warnings } = await brokerWith({ maxPacketSize: 1024 });
    const receiver = await connectWhenListening(port, { clientId: 'receiver' });
    const received: number[] = [];
    receiver.on('message', (_topic, payload) => received.push(payload.length));
    await receiver.subscribeAsync('big', { qos: 1 });
    const sender = await connectWhenListening(port, { clientId: 'sender' });
    // A QoS 1 PUBLISH to "big": 3 bytes of fixed header, 2 + 3 of topic, 2 of packet id, then the payload.
    const atTheLimit = 1024 - 10;
    await sender.publishAsync('big', Buffer.alloc(atTheLimit), { qos: 1 });
    await waitFor(() => received.length === 1, 'the packet at the limit');
    const gone = closed(sender);
    sender.publish('big', Buffer.alloc(atTheLimit + 1), { qos: 1 });
    await gone;
    assert.deepEqual(received, [atTheLimit]);
    await waitFor(() => warnings.some((w) => w.includes('packet larger than 1024 bytes')), 'the warning');
    sender.end(true);
    await receiver.endAsync();
  });

  it('closes the connection of a client that publishes or subscribes past maxTopicLevels', async () => {
    const { port } = await brokerWith({ maxTopicLevels: 3 });
    const client = await connectWhenListening(port, { clientId: 'deep' });
    await client.publishAsync('a/b/c', 'ok', { qos: 1 });
    let gone = closed(client);
    client.publish('a/b/c/d', 'too deep', { qos: 1 });
    await gone;
    client.end(true);
    const subscriber = await connectWhenListening(port, { clientId: 'deep-sub' });
    await subscriber.subscribeAsync('a/+/c', { qos: 0 });
    gone = closed(subscriber);
    subscriber.subscribe('a/+/c/#');
    await gone;
    subscriber.end(true);
  });

  it('closes a connection that sends no CONNECT within connectTimeout', async () => {
    const { port } = await brokerWith({ connectTimeout: 1 });
    await connectWhenListening(port, { clientId: 'ready' }).then((client) => client.endAsync());
    const socket = net.connect(port, '127.0.0.1');
    const started = Date.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const waited = Date.now() - started;
    assert.ok(waited >= 900 && waited < 5000, `closed after ${waited} ms`);
  });
});
