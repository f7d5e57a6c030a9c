import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { allNodes, collect, completionObservers, helper, watchLog, watchStatus } from './support/node-red.js';
import { waitFor } from './support/wait.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { outboxFlow } from './support/flows.js';

const BROKER = 'b0000000000000003';
const CONFIG = 'c0000000000000003';
const { broker, config, out, inNode, sinks } = outboxFlow(BROKER, CONFIG, 'durable-out');

const send = (count: number, from = 1) => {
  for (let i = from; i < from + count; i++) helper.getNode('out1').receive({ payload: `m${i}` });
};

describe('durable mqtt out: queued and acknowledged persistence', () => {
  before(() => helper.startServer());
  // Outboxes live under the user directory, by node id: each test gets its own.
  beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-userdir-') }));
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('queued: completes each message once it is on disk, keeps it through an outage and delivers all in order', async () => {
    // No broker yet: an outage from the start.
    const outage = [config, out(), inNode, ...sinks, ...completionObservers('out1')];
    await helper.load(allNodes, outage);
    const completed = collect(helper.getNode('completed'));
    const statuses = watchStatus(helper.getNode('out1'));
    send(200);
    await waitFor(() => completed.length === 200, 'done() for all 200 while disconnected');
    await waitFor(
      () => statuses.some((s) => s.text?.includes('200 queued')),
      'the queue depth in the status',
    );
    await helper.setFlows([...outage, broker], 'nodes');
    const received = collect(helper.getNode('received'));
    await waitFor(() => received.length === 200, 'all 200 delivered after the broker came');
    assert.deepEqual(
      received.map((m) => m.payload),
      Array.from({ length: 200 }, (_, i) => `m${i + 1}`),
    );
    await waitFor(() => statuses.at(-1)?.text === 'connected · 0 queued', 'an empty queue');
  });

  it('queued: keeps what was not delivered across a redeploy of the whole flow', async () => {
    const outage = [config, out(), inNode, ...sinks];
    await helper.load(allNodes, outage);
    send(50);
    await waitFor(() => (helper.getNode('out1') as unknown as { status: unknown }) !== undefined, 'the node');
    const statuses = watchStatus(helper.getNode('out1'));
    await waitFor(() => statuses.some((s) => s.text?.includes('50 queued')), '50 queued');
    await helper.unload();
    await helper.load(allNodes, [...outage, broker]);
    const received = collect(helper.getNode('received'));
    await waitFor(() => received.length === 50, 'the 50 messages after the redeploy');
    assert.deepEqual(
      received.map((m) => m.payload),
      Array.from({ length: 50 }, (_, i) => `m${i + 1}`),
    );
  });

  it('acknowledged: completes on the broker acknowledgment and emits a receipt with msg.delivery', async () => {
    await helper.load(allNodes, [
      broker,
      config,
      out({ persistence: 'acknowledged', qos: '2' }),
      inNode,
      ...sinks,
      ...completionObservers('out1'),
    ]);
    const receipts = collect(helper.getNode('receipts'));
    const completed = collect(helper.getNode('completed'));
    const received = collect(helper.getNode('received'));
    helper.getNode('out1').receive({ payload: 'critical', topic: 'ignored', custom: 42 });
    await waitFor(
      () => receipts.length === 1 && completed.length === 1 && received.length === 1,
      'receipt, completion and delivery',
    );
    const receipt = receipts[0];
    assert.equal(receipt.custom, 42, 'the receipt is the original msg');
    const delivery = receipt.delivery as { id: string; attempts: number; queuedAt: number; ackedAt: number };
    assert.equal(delivery.attempts, 1);
    assert.equal(typeof delivery.id, 'string');
    assert.ok(delivery.ackedAt >= delivery.queuedAt);
  });

  it('acknowledged: raises QoS 0 to 1 with one warning', async () => {
    await helper.load(allNodes, [
      broker,
      config,
      out({ persistence: 'acknowledged', qos: '0' }),
      inNode,
      ...sinks,
    ]);
    const warnings = watchLog(helper.getNode('out1'), 'warn');
    const received = collect(helper.getNode('received'));
    send(3);
    await waitFor(() => received.length === 3, 'delivery');
    assert.deepEqual(
      received.map((m) => m.qos),
      [1, 1, 1],
    );
    assert.equal(warnings.filter((w) => w.includes('QoS 1')).length, 1);
  });

  it('rejectNew: refuses messages beyond maxMessages with a catchable error and keeps the accepted ones', async () => {
    const outage = [
      config,
      out({ maxMessages: 5, overflow: 'rejectNew' }),
      inNode,
      ...sinks,
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, outage);
    const caught = collect(helper.getNode('caught'));
    const completed = collect(helper.getNode('completed'));
    send(8);
    await waitFor(() => caught.length === 3 && completed.length === 5, 'five accepted, three refused');
    assert.match(
      (caught[0].error as { message: string }).message,
      /The outbox is full \(5 messages or its size limit\)/,
    );
    await helper.setFlows([...outage, broker], 'nodes');
    const received = collect(helper.getNode('received'));
    await waitFor(() => received.length === 5, 'the five accepted');
    assert.deepEqual(
      received.map((m) => m.payload),
      ['m1', 'm2', 'm3', 'm4', 'm5'],
    );
  });

  it('dropOldest: makes room by dropping the oldest waiting messages, counted and logged', async () => {
    const outage = [config, out({ maxMessages: 5, overflow: 'dropOldest' }), inNode, ...sinks];
    await helper.load(allNodes, outage);
    const warnings = watchLog(helper.getNode('out1'), 'warn');
    const statuses = watchStatus(helper.getNode('out1'));
    send(8);
    await waitFor(() => warnings.length === 3, 'three drops logged');
    assert.match(warnings[0], /oldest waiting message \(topic "q\/t"\) was dropped/);
    await waitFor(
      () => statuses.some((s) => /5 queued · 3 dropped since \d\d:\d\d$/.test(s.text ?? '')),
      'the drop count',
    );
    await helper.setFlows([...outage, broker], 'nodes');
    const received = collect(helper.getNode('received'));
    await waitFor(() => received.length === 5, 'the five newest');
    assert.deepEqual(
      received.map((m) => m.payload),
      ['m4', 'm5', 'm6', 'm7', 'm8'],
    );
  });

  it('discards the outbox of a deleted node, with a warning saying how many messages went', async () => {
    const outage = [config, out(), inNode, ...sinks];
    await helper.load(allNodes, outage);
    const completed: unknown[] = [];
    helper.getNode('out1').on('call:status', (() => completed.push(1)) as never);
    const warnings = watchLog(helper.getNode('out1'), 'warn');
    send(4);
    const statuses = watchStatus(helper.getNode('out1'));
    await waitFor(() => statuses.some((s) => s.text?.includes('4 queued')), '4 queued');
    await helper.setFlows([config, inNode, ...sinks], 'nodes');
    await waitFor(() => warnings.some((w) => /deleted with 4 message/.test(w)), 'the warning');
    await helper.setFlows([config, out(), inNode, ...sinks, broker], 'nodes');
    const received = collect(helper.getNode('received'));
    const statusesAfter = watchStatus(helper.getNode('out1'));
    await waitFor(
      () => statusesAfter.some((s) => s.text?.includes('0 queued')),
      'an empty outbox for the new node',
    );
    assert.equal(received.length, 0);
  });
});
