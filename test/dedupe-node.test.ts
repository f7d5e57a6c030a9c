import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import {
  allNodes,
  collect,
  completionObservers,
  helper,
  translate,
  type NodeStatus,
  watchStatus,
} from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { waitFor } from './support/wait.js';
import {
  brokerConfigNode,
  dedupeNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';

const BROKER = 'b0000000000000005';
const CONFIG = 'c0000000000000005';
const broker = embeddedBrokerNode(0, { id: BROKER });
const config = brokerConfigNode({ id: CONFIG, embedded: BROKER, clientId: 'durable-dedupe' });
const dedupe = (extra: Record<string, unknown> = {}) =>
  dedupeNode({ id: 'dedupe1', wires: [['first'], ['duplicates']], ...extra });
const sinks = [helperNode('first'), helperNode('duplicates')];

/** Loads a dedupe node with sinks on both outputs and observers of its done(). */
async function loadDedupe(extra: Record<string, unknown> = {}) {
  await helper.load(allNodes, [dedupe(extra), ...sinks, ...completionObservers('dedupe1')]);
  return {
    node: helper.getNode('dedupe1'),
    first: collect(helper.getNode('first')),
    duplicates: collect(helper.getNode('duplicates')),
    caught: collect(helper.getNode('caught')),
    completed: collect(helper.getNode('completed')),
  };
}

describe('durable dedupe node', () => {
  before(() => helper.startServer());
  beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-userdir-') }));
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('drops the copies of a message by its id: out with message ids → embedded broker (3.1.1 envelope) → in → dedupe', async () => {
    await helper.load(allNodes, [
      broker,
      config,
      mqttOutNode({
        id: 'out1',
        broker: CONFIG,
        topic: 'cmd/valve',
        qos: '1',
        retain: 'false',
        messageId: true,
        messageIdEnvelope: true,
      }),
      mqttInNode({
        id: 'in1',
        broker: CONFIG,
        topic: 'cmd/#',
        unwrapEnvelope: true,
        wires: [['dedupe1', 'raw']],
      }),
      helperNode('raw'),
      dedupe(),
      ...sinks,
    ]);
    const raw = collect(helper.getNode('raw'));
    const first = collect(helper.getNode('first'));
    const duplicates = collect(helper.getNode('duplicates'));
    await waitFor(
      () =>
        (helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } }).connection.connected,
      'the connection',
    );
    const id = '0190f000-0000-7000-8000-00000000abcd';
    const out = helper.getNode('out1');
    // The same command resent with its id, then a new command with the same content (a new id).
    out.receive({ payload: { open: true }, messageId: id });
    out.receive({ payload: { open: true }, messageId: id });
    out.receive({ payload: { open: true } });
    await waitFor(() => first.length + duplicates.length === 3, 'three messages through the dedupe node');
    assert.deepEqual(
      raw.map((m) => m.payload),
      [{ open: true }, { open: true }, { open: true }],
      'the envelope is unwrapped into the original payload',
    );
    assert.equal(raw[0].messageId, id);
    assert.equal(raw[1].messageId, id);
    assert.match(String(raw[2].messageId), /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.deepEqual(
      first.map((m) => m.messageId),
      [id, raw[2].messageId],
    );
    assert.equal(duplicates.length, 1);
    assert.equal(duplicates[0].messageId, id);
    const duplicateOf = duplicates[0].duplicateOf as { firstSeenAt: number; count: number };
    assert.equal(duplicateOf.count, 2);
    assert.ok(Math.abs(duplicateOf.firstSeenAt - Date.now()) < 10_000);
  });

  it('keeps the message id in the outbox: messages queued during an outage arrive after a redeploy with the ids they were given', async () => {
    const flow = [
      config,
      mqttOutNode({
        id: 'out1',
        broker: CONFIG,
        topic: 'q/t',
        qos: '1',
        retain: 'false',
        persistence: 'queued',
        messageId: true,
        messageIdEnvelope: true,
      }),
      mqttInNode({
        id: 'in1',
        broker: CONFIG,
        topic: 'q/#',
        datatype: 'utf8',
        unwrapEnvelope: true,
        wires: [['received']],
      }),
      helperNode('received'),
      ...completionObservers('out1'),
    ];
    // No broker: every message stays in the outbox.
    await helper.load(allNodes, flow);
    const completed = collect(helper.getNode('completed'));
    for (let i = 1; i <= 3; i++) helper.getNode('out1').receive({ payload: `m${i}` });
    await waitFor(() => completed.length === 3, 'the three messages on disk');
    const given = completed.map((m) => m.messageId);
    assert.equal(new Set(given).size, 3);
    await helper.unload();
    await helper.load(allNodes, [...flow, broker]);
    const received = collect(helper.getNode('received'));
    await waitFor(() => received.length === 3, 'the three messages after the redeploy');
    assert.deepEqual(
      received.map((m) => [m.payload, m.messageId]),
      given.map((id, i) => [`m${i + 1}`, id]),
    );
  });

  it('drops duplicates by a msg property and sends each first copy on output 1', async () => {
    const { first, duplicates, completed } = await loadDedupe({ key: 'property', property: 'payload.seq' });
    const node = helper.getNode('dedupe1');
    for (const seq of [1, 2, 1, 3, 2, 1])
      node.receive({ topic: 'orders', payload: { seq, at: Math.random() } });
    await waitFor(() => completed.length === 6, 'done() for all six');
    assert.deepEqual(
      first.map((m) => (m.payload as { seq: number }).seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      duplicates.map((m) => [(m.payload as { seq: number }).seq, (m.duplicateOf as { count: number }).count]),
      [
        [1, 2],
        [2, 2],
        [1, 3],
      ],
    );
  });

  it('drops duplicates by a hash of topic and payload, and tells topics apart', async () => {
    const { first, duplicates, completed } = await loadDedupe({ key: 'payload' });
    const node = helper.getNode('dedupe1');
    node.receive({ topic: 'a', payload: { v: 1 } });
    node.receive({ topic: 'a', payload: '{"v":1}' });
    node.receive({ topic: 'b', payload: { v: 1 } });
    node.receive({ topic: 'a', payload: { v: 2 } });
    await waitFor(() => completed.length === 4, 'done() for all four');
    assert.deepEqual(
      first.map((m) => [m.topic, m.payload]),
      [
        ['a', { v: 1 }],
        ['b', { v: 1 }],
        ['a', { v: 2 }],
      ],
    );
    assert.deepEqual(
      duplicates.map((m) => m.payload),
      ['{"v":1}'],
    );
  });

  it('per topic: the same sequence number on two topics passes twice; globally only once', async () => {
    const perTopic = await loadDedupe({ key: 'property', property: 'payload.seq', scope: 'topic' });
    for (const topic of ['dev/1', 'dev/2', 'dev/1'])
      helper.getNode('dedupe1').receive({ topic, payload: { seq: 7 } });
    await waitFor(() => perTopic.completed.length === 3, 'done() for all three');
    assert.deepEqual(
      perTopic.first.map((m) => m.topic),
      ['dev/1', 'dev/2'],
    );
    assert.deepEqual(
      perTopic.duplicates.map((m) => m.topic),
      ['dev/1'],
    );
    await helper.unload();
    const global = await loadDedupe({ key: 'property', property: 'payload.seq', scope: 'global' });
    for (const topic of ['dev/1', 'dev/2', 'dev/1'])
      helper.getNode('dedupe1').receive({ topic, payload: { seq: 7 } });
    await waitFor(() => global.completed.length === 3, 'done() for all three');
    assert.equal(global.first.length, 1);
    assert.equal(global.duplicates.length, 2);
  });

  it('lets a copy pass again once the window has passed', async () => {
    const { first, duplicates, completed } = await loadDedupe({ key: 'payload', window: 0.2 });
    const node = helper.getNode('dedupe1');
    node.receive({ topic: 't', payload: 'x' });
    node.receive({ topic: 't', payload: 'x' });
    await waitFor(() => completed.length === 2, 'the first two');
    await new Promise((resolve) => setTimeout(resolve, 300));
    node.receive({ topic: 't', payload: 'x' });
    await waitFor(() => completed.length === 3, 'the third');
    assert.equal(first.length, 2);
    assert.equal(duplicates.length, 1);
  });

  it('forgets every key on msg.reset, and passes the reset message on to neither output', async () => {
    const { first, duplicates, completed } = await loadDedupe({ key: 'payload' });
    const node = helper.getNode('dedupe1');
    node.receive({ topic: 't', payload: 'x' });
    node.receive({ reset: true });
    node.receive({ topic: 't', payload: 'x' });
    await waitFor(() => completed.length === 3, 'done() for all three');
    assert.equal(first.length, 2);
    assert.equal(duplicates.length, 0);
  });

  it('shows passed and dropped counts in its status', async () => {
    const { completed } = await loadDedupe({ key: 'payload', maxEntries: 10_000 });
    const statuses = watchStatus(helper.getNode('dedupe1'));
    const node = helper.getNode('dedupe1');
    for (let i = 0; i < 1234; i++) node.receive({ topic: 't', payload: i });
    for (let i = 0; i < 17; i++) node.receive({ topic: 't', payload: i });
    await waitFor(() => completed.length === 1251, 'done() for every message');
    await waitFor(
      () => statuses.at(-1)?.text === '1,234 passed · 17 dropped',
      'the counts in the status',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; statuses: ${JSON.stringify(statuses.slice(-3))}`);
    });
    assert.equal(statuses.at(-1)?.fill, 'green');
  });

  it('raises an error a Catch node sees for a message without the key property, and sends it nowhere', async () => {
    const { first, duplicates, caught } = await loadDedupe({ key: 'property', property: 'payload.seq' });
    helper.getNode('dedupe1').receive({ topic: 't', payload: { other: 1 } });
    await waitFor(() => caught.length === 1, 'the error');
    assert.equal(
      (caught[0].error as { message: string }).message,
      `Error: ${translate('durable-mqtt.errors.dedupe-missing-property', { property: 'payload.seq' })}`,
    );
    assert.equal(first.length + duplicates.length, 0);
  });

  for (const [what, settings, key, values] of [
    ['a negative window', { window: -1 }, 'durable-mqtt.errors.dedupe-window', { window: '-1' }],
    [
      'a window that is not a number',
      { window: 'soon' },
      'durable-mqtt.errors.dedupe-window',
      { window: 'soon' },
    ],
    [
      'a property key without a property',
      { key: 'property', property: ' ' },
      'durable-mqtt.errors.dedupe-no-property',
      {},
    ],
    [
      'an invalid property',
      { key: 'property', property: 'payload[' },
      'durable-mqtt.errors.dedupe-bad-property',
      { property: 'payload[' },
    ],
    ['max keys of 0', { maxEntries: 0 }, 'durable-mqtt.errors.dedupe-max-entries', { max: '0' }],
  ] as const) {
    it(`reports ${what} at deploy and refuses every message with that error`, async () => {
      await helper.load(allNodes, [dedupe(settings), ...sinks, ...completionObservers('dedupe1')]);
      const node = helper.getNode('dedupe1');
      const text = translate(key, values);
      assert.equal(
        (node as unknown as { status: { lastCall?: { args: [NodeStatus] } } }).status.lastCall?.args[0].text,
        text,
      );
      const caught = collect(helper.getNode('caught'));
      node.receive({ payload: 1 });
      await waitFor(() => caught.length === 1, 'the refusal');
      assert.equal((caught[0].error as { message: string }).message, `Error: ${text}`);
      assert.equal(collect(helper.getNode('first')).length, 0);
    });
  }
});
