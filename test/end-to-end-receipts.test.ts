import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import { allNodes, collect, completionObservers, helper, watchStatus } from './support/node-red.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { delay, waitFor } from './support/wait.js';
import {
  brokerConfigNode,
  dedupeNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';

/** Node-RED's function node: the consuming flows here finish (done) or fail (throw) as a user's would. */
const functionNode = require('@node-red/nodes/core/function/10-function.js') as (RED: unknown) => void;
const nodes = [...allNodes, functionNode];

const BROKER = 'b00000000000000e2';

/** A node's view of the global context (Node-RED's types leave context() untyped). */
interface GlobalContextOwner {
  context(): { global: { get(key: string): unknown } };
}
const CONFIG = 'c00000000000000e2';

interface Delivery {
  status: string;
  messageId: string;
  attempts: number;
  receipts: { by: string; ok: boolean }[];
  latency?: number;
  error?: string;
  by?: string;
}

/**
 * out (acknowledged, until subscriber) → embedded broker → in nodes (ack: complete, each with its
 * subscriber name) → a function node each: `consumer(name, code)` makes one, where `code` is the
 * function's body (it gets msg; `return msg` finishes it, `throw` fails it).
 */
function receiptFlow(
  protocolVersion: 4 | 5,
  out: Record<string, unknown>,
  consumers: { name: string; code: string }[],
) {
  const flow: Record<string, unknown>[] = [
    embeddedBrokerNode(0, { id: BROKER }),
    brokerConfigNode({ id: CONFIG, embedded: BROKER, clientId: 'durable-receipts', protocolVersion }),
    mqttOutNode({
      id: 'out1',
      broker: CONFIG,
      topic: 'plant/cmd',
      qos: '1',
      retain: 'false',
      persistence: 'acknowledged',
      until: 'subscriber',
      receiptTimeout: 1,
      wires: [['receipts']],
      ...out,
    }),
    helperNode('receipts'),
    ...completionObservers('out1'),
  ];
  for (const { name, code } of consumers) {
    flow.push(
      mqttInNode({
        id: `in-${name}`,
        broker: CONFIG,
        topic: 'plant/#',
        ack: 'complete',
        unwrapEnvelope: true,
        subscriberName: name,
        wires: [[`fn-${name}`]],
      }),
      { id: `fn-${name}`, type: 'function', func: code, outputs: 1, wires: [[]] },
    );
  }
  return flow;
}

async function connected() {
  await waitFor(
    () => (helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } }).connection.connected,
    'the connection',
  );
}

describe('end-to-end receipts (until: subscriber)', () => {
  before(() => helper.startServer());
  beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-receipts-') }));
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a message is delivered once the consuming flow has finished with it, and the receipt says who and how fast`, async () => {
      await helper.load(
        nodes,
        receiptFlow(protocolVersion, {}, [
          { name: 'valve-controller', code: "global.set('got', (global.get('got') || 0) + 1); return msg;" },
        ]),
      );
      const receipts = collect(helper.getNode('receipts'));
      const completed = collect(helper.getNode('completed'));
      await connected();
      helper.getNode('out1').receive({ payload: { open: true } });
      await waitFor(() => receipts.length === 1, 'the receipt');
      const delivery = receipts[0].delivery as Delivery;
      assert.equal(delivery.status, 'delivered');
      assert.deepEqual(
        delivery.receipts.map(({ by, ok }) => ({ by, ok })),
        [{ by: 'valve-controller', ok: true }],
      );
      assert.equal(delivery.messageId, receipts[0].messageId);
      assert.equal(delivery.attempts, 1);
      assert.ok(typeof delivery.latency === 'number' && delivery.latency >= 0, `latency ${delivery.latency}`);
      assert.deepEqual(receipts[0].payload, { open: true }, 'the msg that was published');
      await waitFor(() => completed.length === 1, 'done() once the receipt came');
    });
  }

  it('a flow that fails sends a negative receipt: told on the output, not delivered, sent again until the flow succeeds', async () => {
    // Fails the first time it sees a message, then succeeds: a flow that recovers.
    const flaky =
      "const seen = context.get('seen') || 0; context.set('seen', seen + 1);" +
      "if (seen === 0) throw new Error('valve jammed'); return msg;";
    await helper.load(nodes, receiptFlow(4, {}, [{ name: 'valve-controller', code: flaky }]));
    const receipts = collect(helper.getNode('receipts'));
    await connected();
    helper.getNode('out1').receive({ payload: 'open' });
    await waitFor(() => receipts.length === 2, 'a negative receipt, then the positive one', 15_000);
    const [failed, delivered] = receipts.map((msg) => msg.delivery as Delivery);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.by, 'valve-controller');
    assert.match(String(failed.error), /valve jammed/);
    assert.equal(delivered.status, 'delivered');
    assert.equal(delivered.attempts, 2, 'sent again after the receipt timeout');
  });

  it('a persisted dedupe before a flow that fails forgets the key: the copy sent again is handled, not dropped as a duplicate', async () => {
    const flaky =
      "const seen = context.get('seen') || 0; context.set('seen', seen + 1);" +
      "if (seen === 0) throw new Error('valve jammed');" +
      "global.set('handled', (global.get('handled') || 0) + 1); return msg;";
    const flow = receiptFlow(4, {}, [{ name: 'valve-controller', code: flaky }]);
    // in → dedupe (on disk) → the flaky function.
    const inNode = flow.find((node) => node.id === 'in-valve-controller') as Record<string, unknown>;
    inNode.wires = [['dedupe1']];
    flow.push(dedupeNode({ id: 'dedupe1', persist: true, wires: [['fn-valve-controller'], []] }));
    await helper.load(nodes, flow);
    const receipts = collect(helper.getNode('receipts'));
    await connected();
    helper.getNode('out1').receive({ payload: 'open' });
    await waitFor(() => receipts.length === 2, 'a negative receipt, then the positive one', 15_000);
    const [failed, delivered] = receipts.map((msg) => msg.delivery as Delivery);
    assert.equal(failed.status, 'failed');
    assert.equal(delivered.status, 'delivered');
    assert.equal(delivered.attempts, 2);
    const global = (helper.getNode('fn-valve-controller') as unknown as GlobalContextOwner).context().global;
    assert.equal(global.get('handled'), 1, 'the copy sent again reached the function and was handled');
  });

  it('waits for every subscriber named in expect', async () => {
    await helper.load(
      nodes,
      receiptFlow(5, { expect: 'left-arm, right-arm' }, [
        { name: 'left-arm', code: 'return msg;' },
        { name: 'right-arm', code: 'return msg;' },
      ]),
    );
    const receipts = collect(helper.getNode('receipts'));
    await connected();
    helper.getNode('out1').receive({ payload: 'lift' });
    await waitFor(() => receipts.length === 1, 'the receipt');
    const delivery = receipts[0].delivery as Delivery;
    assert.equal(delivery.status, 'delivered');
    assert.deepEqual(delivery.receipts.map(({ by }) => by).sort(), ['left-arm', 'right-arm']);
  });

  it('sends again while no subscriber answers, and gives up after giveUpAfter: expired, to the output and to Catch', async () => {
    await helper.load(nodes, receiptFlow(4, { receiptTimeout: 0.2, giveUpAfter: 1.5 }, []));
    const receipts = collect(helper.getNode('receipts'));
    const caught = collect(helper.getNode('caught'));
    const statuses = watchStatus(helper.getNode('out1'));
    await connected();
    helper.getNode('out1').receive({ payload: 'anyone?' });
    await waitFor(() => receipts.length === 1, 'the expired receipt', 10_000);
    const delivery = receipts[0].delivery as Delivery;
    assert.equal(delivery.status, 'expired');
    assert.ok(delivery.attempts >= 2, `sent ${delivery.attempts} times before giving up`);
    await waitFor(() => caught.length === 1, 'the error at the Catch node');
    assert.match(String((caught[0].error as { message: string }).message), /without its receipts/);
    await waitFor(
      () => statuses.some((status) => /1 expired/.test(String(status.text))),
      'the count in the status',
    );
    await delay(500);
    assert.equal(receipts.length, 1, 'nothing more once expired');
  });
});
