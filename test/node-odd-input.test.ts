/**
 * Every node with an input, sent the msgs a flow can throw at it: each gets a
 * clear error a Catch node sees, or the conversion its help documents. Nothing
 * crashes, and the messages already queued in an outbox still arrive.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import { allNodes, collect, completionObservers, helper } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import {
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { delay, waitFor } from './support/wait.js';

const CONFIG = 'c00000000000odd1';
const HUGE = 5 * 1024 * 1024;
/** One byte more than the remaining length MQTT can encode; calloc'd, so its pages stay untouched. */
const BEYOND_MQTT = Buffer.alloc(268_435_456);

/** What an odd msg must lead to: its bytes published on its topic, or an error matching a pattern. */
type Outcome = { published: string | Buffer; qos?: number } | { error: RegExp };

function circular(): Record<string, unknown> {
  const value: Record<string, unknown> = { name: 'loop' };
  value.self = value;
  return value;
}

/**
 * The odd msgs for an out node, each on a topic of its own under `prefix`
 * (the ones about the topic itself excepted), with what must come of it.
 */
function outCases(prefix: string): [what: string, msg: Record<string, unknown>, outcome: Outcome][] {
  const t = (name: string) => `${prefix}/${name}`;
  return [
    ['payload undefined', { topic: t('undefined') }, { published: '' }],
    ['payload null', { topic: t('null'), payload: null }, { published: '' }],
    ['a circular payload', { topic: t('circular'), payload: circular() }, { error: /circular/i }],
    ['a function as payload', { topic: t('function'), payload: () => 1 }, { error: /no JSON form/ }],
    ['a BigInt payload', { topic: t('bigint'), payload: 12n }, { published: '12' }],
    [
      'a Uint8Array payload',
      { topic: t('bytes'), payload: new Uint8Array([1, 2, 3]) },
      { published: Buffer.from([1, 2, 3]) },
    ],
    [
      'a 5 MB Buffer',
      { topic: t('huge'), payload: Buffer.alloc(HUGE, 7) },
      { published: Buffer.alloc(HUGE, 7) },
    ],
    [
      'a payload larger than an MQTT packet',
      { topic: t('beyond'), payload: BEYOND_MQTT },
      { error: /larger than an MQTT packet/ },
    ],
    [
      'a circular property beside the payload',
      { topic: t('circular-msg'), payload: 'p', extra: circular() },
      { published: 'p' },
    ],
    ['a topic with +', { topic: `${prefix}/+/x`, payload: 'p' }, { error: /cannot contain \+ or #/ }],
    ['a topic with #', { topic: `${prefix}/#`, payload: 'p' }, { error: /cannot contain \+ or #/ }],
    ['a topic with NUL', { topic: `${prefix}/a\u0000b`, payload: 'p' }, { error: /NUL character/ }],
    ['a topic with empty levels', { topic: `${prefix}//empty/`, payload: 'p' }, { published: 'p' }],
    ['an empty topic', { topic: '', payload: 'p' }, { error: /the topic is empty/ }],
    ['a number as topic', { topic: 42, payload: 'p' }, { error: /the topic is not a string/ }],
    ['no topic', { payload: 'p' }, { error: /the topic is not a string/ }],
    ['qos 3', { topic: t('qos3'), payload: 'p', qos: 3 }, { error: /Invalid QoS "3"/ }],
    ['qos "abc"', { topic: t('qos-abc'), payload: 'p', qos: 'abc' }, { error: /Invalid QoS "abc"/ }],
    ['qos 1.5', { topic: t('qos-fraction'), payload: 'p', qos: 1.5 }, { error: /Invalid QoS "1.5"/ }],
    ['qos "1"', { topic: t('qos-string'), payload: 'p', qos: '1' }, { published: 'p', qos: 1 }],
    [
      'retain "yes"',
      { topic: t('retain-yes'), payload: 'p', retain: 'yes' },
      { error: /Invalid retain "yes"/ },
    ],
    ['retain 1', { topic: t('retain-1'), payload: 'p', retain: 1 }, { error: /Invalid retain "1"/ }],
    ['retain "false"', { topic: t('retain-false'), payload: 'p', retain: 'false' }, { published: 'p' }],
    ['responseTopic 42', { topic: t('p1'), payload: 'p', responseTopic: 42 }, { error: /msg.responseTopic/ }],
    [
      'a responseTopic with #',
      { topic: t('p2'), payload: 'p', responseTopic: 'a/#' },
      { error: /msg.responseTopic/ },
    ],
    [
      'correlationData 42',
      { topic: t('p3'), payload: 'p', correlationData: 42 },
      { error: /msg.correlationData/ },
    ],
    ['contentType {}', { topic: t('p4'), payload: 'p', contentType: {} }, { error: /msg.contentType/ }],
    [
      'userProperties "x"',
      { topic: t('p5'), payload: 'p', userProperties: 'x' },
      { error: /msg.userProperties/ },
    ],
    [
      'messageExpiryInterval "soon"',
      { topic: t('p6'), payload: 'p', messageExpiryInterval: 'soon' },
      { error: /msg.messageExpiryInterval/ },
    ],
    [
      'msg.action unknown (an out node takes connect and disconnect, as the core one)',
      { topic: t('action'), payload: 'p', action: 'explode' },
      { error: /Unknown msg.action "explode": use connect or disconnect/ },
    ],
  ];
}

/** Resolves once the broker config is connected with `count` filters subscribed at the broker. */
async function subscribedAtBroker(count: number): Promise<void> {
  const { connection } = helper.getNode(CONFIG) as unknown as {
    connection: { connected: boolean; brokerSubscriptions(): Map<string, number> };
  };
  await waitFor(
    () => connection.connected && connection.brokerSubscriptions().size === count,
    `${count} subscription(s) at the broker`,
  );
}

function outNode(id: string, persistence: string) {
  return mqttOutNode({ id, broker: CONFIG, persistence });
}

describe('nodes given odd msgs', () => {
  before(async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-odd-') });
    await helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('out nodes (none, queued, acknowledged): a clear error or the documented conversion for each, and the queue intact', async () => {
    const modes = ['none', 'queued', 'acknowledged'] as const;
    const flow: Record<string, unknown>[] = [
      brokerConfigNode({ id: CONFIG, clientId: 'odd-input' }),
      ...modes.map((mode) => outNode(`out-${mode}`, mode)),
      mqttInNode({
        id: 'watch',
        broker: CONFIG,
        topic: 'odd/#',
        qos: 2,
        datatype: 'buffer',
        wires: [['watched']],
      }),
      helperNode('watched'),
      ...completionObservers(...modes.map((mode) => `out-${mode}`)),
    ];
    // No broker yet: the queued and acknowledged nodes keep what they are given.
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    const completed = collect(helper.getNode('completed'));
    const watched = collect(helper.getNode('watched'));
    const send = (mode: string, msg: Record<string, unknown>) => helper.getNode(`out-${mode}`).receive(msg);
    for (const mode of ['queued', 'acknowledged']) {
      for (const n of [1, 2, 3]) send(mode, { topic: `odd/${mode}/before`, payload: `queued ${n}`, qos: 1 });
      for (const [, msg] of outCases(`odd/${mode}`)) send(mode, msg);
    }
    const casesPer = outCases('x').length;
    const errorsPer = outCases('x').filter(([, , outcome]) => 'error' in outcome).length;
    await waitFor(() => caught.length === 2 * errorsPer, 'the errors of the queued and acknowledged nodes');

    await helper.setFlows([...flow, embeddedBrokerNode(0)], 'nodes');
    await subscribedAtBroker(1);
    for (const [, msg] of outCases('odd/none')) send('none', msg);
    const published = (mode: string) => outCases('x').length - errorsPer + (mode === 'none' ? 0 : 3);
    await waitFor(
      () =>
        modes.every(
          (mode) =>
            watched.filter((m) => String(m.topic).startsWith(`odd/${mode}/`)).length === published(mode),
        ),
      'every published message',
      30_000,
    );
    await waitFor(() => caught.length === 3 * errorsPer, 'the errors of the non-persistent node');
    await delay(300);

    for (const mode of modes) {
      const arrived = watched.filter((m) => String(m.topic).startsWith(`odd/${mode}/`));
      if (mode !== 'none') {
        assert.deepEqual(
          arrived.filter((m) => m.topic === `odd/${mode}/before`).map((m) => `${m.payload}`),
          ['queued 1', 'queued 2', 'queued 3'],
          `${mode}: what was queued before the odd msgs arrived, in order`,
        );
      }
      const errors = caught
        .filter((m) => (m.error as { source: { id: string } }).source.id === `out-${mode}`)
        .map((m) => (m.error as { message: string }).message);
      let errorIndex = 0;
      for (const [what, msg, outcome] of outCases(`odd/${mode}`)) {
        if ('error' in outcome) {
          assert.match(errors[errorIndex++] ?? '', outcome.error, `${mode}: ${what}`);
          continue;
        }
        const message = arrived.find((m) => m.topic === msg.topic);
        assert.ok(message, `${mode}: ${what} was published`);
        const expected = Buffer.isBuffer(outcome.published)
          ? outcome.published
          : Buffer.from(outcome.published);
        assert.ok((message.payload as Buffer).equals(expected), `${mode}: ${what} as documented`);
        if (outcome.qos !== undefined) assert.equal(message.qos, outcome.qos, `${mode}: ${what}`);
      }
      assert.equal(errors.length, errorIndex, `${mode}: no other error`);
    }
    assert.equal(completed.length, 2 * 3 + 3 * (casesPer - errorsPer), 'every other msg completed');
  });

  it('out nodes: the first msg a node gets, without a topic, meets the same topic check as any other', async () => {
    const flow: Record<string, unknown>[] = [
      embeddedBrokerNode(0),
      brokerConfigNode({ id: CONFIG, clientId: 'odd-first' }),
      outNode('out-fresh', 'none'),
      { ...outNode('out-property', 'none'), topic: 'nowhere', topicType: 'msg' },
      ...completionObservers('out-fresh', 'out-property'),
    ];
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    helper.getNode('out-fresh').receive({ payload: 'p' });
    helper.getNode('out-property').receive({ payload: 'p' });
    await waitFor(() => caught.length === 2, 'both errors');
    for (const msg of caught)
      assert.match((msg.error as { message: string }).message, /the topic is not a string/);
  });

  it('a dynamic in node: a clear error for each odd control msg, and its subscriptions untouched by them', async () => {
    const flow = [
      embeddedBrokerNode(0),
      brokerConfigNode({ id: CONFIG, clientId: 'odd-dynamic' }),
      mqttInNode({
        id: 'dyn',
        broker: CONFIG,
        topic: '',
        topicType: 'dynamic',
        datatype: 'utf8',
        wires: [['out']],
      }),
      helperNode('out'),
      mqttOutNode({ id: 'pub', broker: CONFIG, qos: '1' }),
      ...completionObservers('dyn'),
    ];
    await helper.load(allNodes, flow);
    const caught = collect(helper.getNode('caught'));
    const output = collect(helper.getNode('out'));
    const dyn = helper.getNode('dyn');
    dyn.receive({ action: 'subscribe', topic: 'ok/+' });
    const loop = circular();
    const cases: [what: string, msg: Record<string, unknown>, error: RegExp | undefined][] = [
      ['msg.action unknown', { action: 'explode', topic: 'x' }, /Unknown msg.action "explode"/],
      ['no msg.action', { topic: 'x', payload: 1 }, /Unknown msg.action "undefined"/],
      ['msg.action a number', { action: 7 }, /Unknown msg.action "7"/],
      ['subscribe without a topic', { action: 'subscribe' }, /msg.topic must be a topic filter/],
      ['subscribe to an empty list', { action: 'subscribe', topic: [] }, /msg.topic must be a topic filter/],
      ['subscribe to a number', { action: 'subscribe', topic: 42 }, /msg.topic must be a topic filter/],
      ['subscribe to null', { action: 'subscribe', topic: null }, /msg.topic must be a topic filter/],
      [
        'subscribe to # before the last level',
        { action: 'subscribe', topic: 'a/#/b' },
        /# must be the last level/,
      ],
      ['subscribe to a filter with NUL', { action: 'subscribe', topic: 'a\u0000' }, /NUL character/],
      ['subscribe to an empty filter', { action: 'subscribe', topic: '' }, /the topic is empty/],
      ['subscribe with qos 3', { action: 'subscribe', topic: 'ok/a', qos: 3 }, /Invalid QoS "3"/],
      ['subscribe with qos "abc"', { action: 'subscribe', topic: 'ok/a', qos: 'abc' }, /Invalid QoS "abc"/],
      [
        'subscribe an entry with qos 5',
        { action: 'subscribe', topic: [{ topic: 'ok/a', qos: 5 }] },
        /Invalid QoS "5"/,
      ],
      [
        'subscribe a good and a bad filter',
        { action: 'subscribe', topic: ['extra/b', 'bad/#/x'] },
        /# must be the last level/,
      ],
      ['unsubscribe from null', { action: 'unsubscribe', topic: null }, /msg.topic must be a topic filter/],
      ['getSubscriptions with a circular msg', { action: 'getSubscriptions', loop }, undefined],
    ];
    for (const [, msg] of cases) dyn.receive(msg);
    const expectedErrors = cases.filter(([, , error]) => error).length;
    await waitFor(() => caught.length === expectedErrors && output.length === 1, 'every answer');
    let index = 0;
    for (const [what, , error] of cases) {
      if (!error) continue;
      assert.match((caught[index++].error as { message: string }).message, error, what);
    }
    assert.deepEqual(output[0].payload, [{ topic: 'ok/+', qos: 1 }], 'the subscription list, unchanged');
    await subscribedAtBroker(1);
    helper.getNode('pub').receive({ topic: 'ok/1', payload: 'still subscribed' });
    helper.getNode('pub').receive({ topic: 'extra/b', payload: 'never subscribed' });
    await waitFor(() => output.length >= 2, 'the message on ok/1');
    await delay(200);
    assert.deepEqual(
      output.slice(1).map((m) => m.payload),
      ['still subscribed'],
    );
  });
});
