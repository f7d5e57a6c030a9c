import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import {
  allNodes,
  collect,
  completionObservers,
  helper,
  loggedLines,
  translate,
  watchLog,
  watchStatus,
} from './support/node-red.js';
import { waitFor } from './support/wait.js';
import { temporaryDirectory } from './support/node-red-process.js';
import {
  brokerConfigNode,
  dedupeNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  outboxFlow,
} from './support/flows.js';

// Settings changed at a redeploy must never strand what a node stored: each test stores
// messages under one setting, redeploys with another, and checks they still arrive.
const BROKER = 'b0000000000000015';
const CONFIG = 'c0000000000000015';
const { broker, config, out, inNode, sinks } = outboxFlow(BROKER, CONFIG, 'setting-changes');

const send = (count: number, from = 1) => {
  for (let i = from; i < from + count; i++) helper.getNode('out1').receive({ payload: `m${i}` });
};
const payloads = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);

describe('settings changed at a redeploy strand nothing', () => {
  let userDir: string;
  before(() => helper.startServer());
  beforeEach(() => {
    userDir = temporaryDirectory('durable-mqtt-userdir-');
    helper.settings({ userDir });
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  /** Stores `count` messages in out1's outbox under `mode`, with no broker to take them. */
  async function storeWhileOffline(mode: string, count: number, extra: Record<string, unknown> = {}) {
    await helper.load(allNodes, [config, out({ persistence: mode, ...extra }), inNode, ...sinks]);
    const statuses = watchStatus(helper.getNode('out1'));
    send(count);
    await waitFor(() => statuses.some((s) => s.text?.includes(`${count} queued`)), `${count} queued`);
    await helper.unload();
  }

  for (const mode of ['queued', 'acknowledged']) {
    it(`${mode} to none: delivers what the outbox holds, says so in the status and the log, then removes the outbox`, async () => {
      await storeWhileOffline(mode, 2);
      const directory = path.join(userDir, 'durable-mqtt', 'outbox', 'out1');
      assert.ok(existsSync(directory), 'the outbox is on disk before the switch');

      await helper.load(allNodes, [config, out({ persistence: 'none' }), inNode, ...sinks]);
      const node = helper.getNode('out1');
      const warnings = watchLog(node, 'warn');
      const logs = watchLog(node, 'log');
      const statuses = watchStatus(node);
      await waitFor(
        () => warnings.includes(translate('durable-mqtt.errors.leftover-found', { count: 2, directory })),
        'a warning that names the leftover messages and where they are',
      );
      await waitFor(
        () => statuses.some((s) => s.text?.includes('delivering 2 left from a persistent mode')),
        'the leftover count in the status',
      );

      assert.equal(logs.length, 0, 'nothing said delivered while the broker is away');
      assert.ok(existsSync(directory), 'the outbox kept while its messages wait');

      // The broker comes back (a 'nodes' deploy leaves the unchanged out node running): the stored
      // messages arrive, and the outbox is gone.
      await helper.setFlows([config, out({ persistence: 'none' }), inNode, ...sinks, broker], 'nodes');
      const received = collect(helper.getNode('received'));
      await waitFor(() => received.length === 2, 'both stored messages delivered in mode none');
      assert.deepEqual(
        received.map((m) => m.payload),
        payloads(1, 2),
      );
      await waitFor(() => !existsSync(directory), 'the outbox removed once empty');
      await waitFor(
        () => logs.includes(translate('durable-mqtt.log.leftover-delivered', { count: 2 })),
        'a log line saying the outbox is delivered and removed',
      );
      await waitFor(() => statuses.at(-1)?.text === 'connected', 'a status without the leftover count');
    });
  }

  it('none with no outbox on disk says nothing and creates none', async () => {
    await helper.load(allNodes, [config, out({ persistence: 'none' }), inNode, ...sinks, broker]);
    const node = helper.getNode('out1');
    const warnings = watchLog(node, 'warn');
    const received = collect(helper.getNode('received'));
    const connection = helper.getNode(CONFIG).connection as { status: { state: string } };
    await waitFor(() => connection.status.state === 'connected', 'connected');
    send(1);
    await waitFor(() => received.length === 1, 'a message published directly');
    assert.deepEqual(warnings, []);
    assert.equal(existsSync(path.join(userDir, 'durable-mqtt', 'outbox', 'out1')), false);
  });

  it('a leftover outbox is kept across a redeploy before it is delivered, and discarded with a warning when the node is deleted', async () => {
    await storeWhileOffline('queued', 3);
    const directory = path.join(userDir, 'durable-mqtt', 'outbox', 'out1');
    await helper.load(allNodes, [config, out({ persistence: 'none' }), inNode, ...sinks]);
    const statuses = watchStatus(helper.getNode('out1'));
    await waitFor(() => statuses.some((s) => s.text?.includes('delivering 3 left')), 'the leftover found');
    await helper.unload();
    assert.ok(existsSync(directory), 'a redeploy keeps the leftover outbox');

    await helper.load(allNodes, [config, out({ persistence: 'none' }), inNode, ...sinks]);
    const node = helper.getNode('out1');
    const warnings = watchLog(node, 'warn');
    const again = watchStatus(node);
    await waitFor(() => again.some((s) => s.text?.includes('delivering 3 left')), 'the leftover found again');
    await helper.setFlows([config, inNode, ...sinks], 'full');
    await waitFor(
      () => warnings.includes(translate('durable-mqtt.errors.outbox-discarded', { count: 3 })),
      'the discarded count in the log',
    );
    assert.equal(existsSync(directory), false);
  });

  it('bounds shrunk below what is stored: every stored message is delivered, none dropped; new ones are refused with an error until there is room', async () => {
    await storeWhileOffline('queued', 10, { maxMessages: 100, overflow: 'dropOldest' });
    const shrunk = out({ maxMessages: 3, overflow: 'dropOldest' });
    await helper.load(allNodes, [config, shrunk, inNode, ...sinks, ...completionObservers('out1')]);
    const node = helper.getNode('out1');
    const warnings = watchLog(node, 'warn');
    const statuses = watchStatus(node);
    const caught = collect(helper.getNode('caught'));
    await waitFor(
      () =>
        warnings.some((w) => w.startsWith('The outbox holds 10 message(s)')) &&
        statuses.some((s) => s.text?.includes('over its bounds')),
      'the over-bound warning and status',
    );
    send(1, 11);
    await waitFor(() => caught.length === 1, 'the new message refused with an error a Catch node sees');
    assert.match(String((caught[0].error as { message: string }).message), /outbox is full/);

    await helper.setFlows(
      [config, shrunk, inNode, ...sinks, ...completionObservers('out1'), broker],
      'nodes',
    );
    const received = collect(helper.getNode('received'));
    const redeployedWarnings = watchLog(helper.getNode('out1'), 'warn');
    await waitFor(() => received.length === 10, 'all ten stored messages delivered');
    assert.deepEqual(
      received.map((m) => m.payload),
      payloads(1, 10),
    );
    assert.equal(
      redeployedWarnings.filter((w) => w.includes('dropped to make room')).length,
      0,
      'no stored message evicted',
    );
  });
  it('dedupe with persist switched off: says which folder still holds what it remembered, and how to use or remove it', async () => {
    const dedupe = (persist: boolean) => dedupeNode({ id: 'dedupe1', persist, wires: [['first'], []] });
    await helper.load(allNodes, [dedupe(true), helperNode('first')]);
    const first = collect(helper.getNode('first'));
    helper.getNode('dedupe1').receive({ payload: 'x', messageId: 'a'.repeat(16) });
    await waitFor(() => first.length === 1, 'a message through the persisted dedupe');
    await helper.unload();
    const directory = path.join(userDir, 'durable-mqtt', 'dedupe', 'dedupe1');
    assert.ok(existsSync(directory));

    await helper.load(allNodes, [dedupe(false), helperNode('first')]);
    const warnings = watchLog(helper.getNode('dedupe1'), 'warn');
    await helper.setFlows([dedupe(false), helperNode('first')], 'full');
    const redeployed = watchLog(helper.getNode('dedupe1'), 'warn');
    const expected = translate('durable-mqtt.errors.dedupe-disk-unused', { directory });
    await waitFor(
      () => warnings.includes(expected) || redeployed.includes(expected),
      'a warning naming the unused folder',
    );
    assert.ok(existsSync(directory), "nothing deleted behind the user's back");
  });

  it('embedded broker switched from disk to memory: says which folder still holds its stored state, and how to use or remove it', async () => {
    const onDisk = embeddedBrokerNode(0, { id: BROKER, persistence: 'disk' });
    await helper.load(allNodes, [onDisk]);
    const directory = path.join(userDir, 'durable-mqtt', 'broker', BROKER);
    await waitFor(() => existsSync(directory), "the broker's folder on disk");
    await helper.unload();

    const inMemory = embeddedBrokerNode(0, { id: BROKER, persistence: 'memory' });
    await helper.load(allNodes, [inMemory]);
    const warnings = watchLog(helper.getNode(BROKER), 'warn');
    await helper.setFlows([{ ...inMemory, port: 0, wsPath: '' }], 'full');
    const redeployed = watchLog(helper.getNode(BROKER), 'warn');
    const expected = translate('durable-mqtt.errors.broker-disk-unused', { mode: 'memory', directory });
    await waitFor(
      () => warnings.includes(expected) || redeployed.includes(expected),
      'a warning naming the unused folder',
    );
    assert.ok(existsSync(directory), "nothing deleted behind the user's back");
  });

  for (const change of ['another client id', 'clean session on'] as const) {
    it(`broker config with a persistent session, then ${change}: names the session left at the broker, and how to get it back or remove it`, async () => {
      const persistent = brokerConfigNode({
        id: CONFIG,
        embedded: BROKER,
        clientId: 'kept-1',
        cleanSession: false,
      });
      const subscriber = mqttInNode({ id: 'in1', broker: CONFIG, topic: 'kept/#', wires: [[]] });
      const brokerNode = embeddedBrokerNode(0, { id: BROKER });
      await helper.load(allNodes, [brokerNode, persistent, subscriber]);
      await waitFor(
        () =>
          (helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } }).connection.connected,
        'the persistent session opened',
      );
      await helper.unload();

      const changed =
        change === 'another client id'
          ? { ...persistent, clientId: 'kept-2' }
          : { ...persistent, cleanSession: true };
      await helper.load(allNodes, [brokerNode, changed, subscriber]);
      // The embedded broker keeps the session even from a clean session of the same client id: its
      // clean sessions go through its core, not through a CONNECT.
      const expected = translate('durable-mqtt.errors.session-left', {
        broker: `embedded:${BROKER}`,
        clientId: 'kept-1',
        expiry: '',
      });
      assert.ok(
        loggedLines('warn', CONFIG).includes(expected),
        'a warning naming the broker and the client id',
      );

      // Back to the first settings: the session is this config's again, and nothing is said.
      await helper.unload();
      await helper.load(allNodes, [brokerNode, persistent, subscriber]);
      assert.ok(!loggedLines('warn', CONFIG).includes(expected), 'switched back: no warning');
    });
  }
});
