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
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { skipUnlessInstalled } from './support/services.js';
import { freePort } from './support/ports.js';
import { decodeReceipts } from '../nodes/lib/receipt.js';

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
  consumers: { name: string; code: string; maxDeliveries?: number }[],
  /** The broker's TCP port (Mosquitto, or the embedded broker's listener); none: in process. */
  port?: number,
) {
  const flow: Record<string, unknown>[] = [
    embeddedBrokerNode(port ?? 0, { id: BROKER }),
    port === undefined
      ? brokerConfigNode({ id: CONFIG, embedded: BROKER, clientId: 'durable-receipts', protocolVersion })
      : brokerConfigNode({ id: CONFIG, port, clientId: 'durable-receipts', protocolVersion }),
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
  for (const { name, code, maxDeliveries } of consumers) {
    flow.push(
      mqttInNode({
        id: `in-${name}`,
        broker: CONFIG,
        topic: 'plant/#',
        ack: 'complete',
        unwrapEnvelope: true,
        subscriberName: name,
        maxDeliveries,
        outputs: 2,
        wires: [[`fn-${name}`], [`quarantined-${name}`]],
      }),
      helperNode(`quarantined-${name}`),
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

  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: the receipts of a burst travel together, fewer messages than receipts, and every message is delivered`, async () => {
      const flow = receiptFlow(protocolVersion, {}, [{ name: 'consumer', code: 'return msg;' }]);
      // Another in node listens on the out node's receipt topic, to see what travels there.
      flow.push(
        mqttInNode({
          id: 'wire',
          broker: CONFIG,
          topic: 'durable-mqtt/receipts/#',
          datatype: 'buffer',
          wires: [['on-wire']],
        }),
        helperNode('on-wire'),
      );
      await helper.load(nodes, flow);
      const receipts = collect(helper.getNode('receipts'));
      const onWire = collect(helper.getNode('on-wire'));
      await connected();
      const count = 200;
      for (let i = 0; i < count; i++) helper.getNode('out1').receive({ payload: i });
      await waitFor(() => receipts.length === count, 'every receipt').catch((e) => {
        console.log(
          'got',
          receipts.length,
          'wire',
          onWire.length,
          JSON.stringify(receipts.slice(0, 2).map((m) => m.delivery)),
        );
        throw e;
      });
      assert.ok(
        receipts.every((msg) => (msg.delivery as Delivery).status === 'delivered'),
        'all delivered',
      );
      await waitFor(
        () => onWire.flatMap((msg) => decodeReceipts(msg.payload as Buffer) ?? []).length === count,
        'the receipts seen on the wire',
      );
      const carried = onWire.flatMap((msg) => decodeReceipts(msg.payload as Buffer) ?? []);
      assert.deepEqual(
        new Set(carried.map((receipt) => receipt.messageId)),
        new Set(receipts.map((msg) => msg.messageId)),
        'each message answered once',
      );
      assert.ok(onWire.length < count / 2, `${count} receipts in ${onWire.length} messages`);
    });
  }

  it('an in node that acknowledges on arrival sends the receipt on arrival too', async () => {
    const flow = receiptFlow(4, {}, [{ name: 'on-arrival', code: "throw new Error('not waited for');" }]);
    const consumer = flow.find((node) => node.id === 'in-on-arrival')!;
    consumer.ack = 'receipt';
    await helper.load(nodes, flow);
    const receipts = collect(helper.getNode('receipts'));
    await connected();
    helper.getNode('out1').receive({ payload: 'ping' });
    await waitFor(() => receipts.length === 1, 'the receipt');
    const delivery = receipts[0].delivery as Delivery;
    assert.equal(delivery.status, 'delivered', 'the flow is not waited for, so its error does not count');
    assert.deepEqual(
      delivery.receipts.map(({ by }) => by),
      ['on-arrival'],
    );
  });

  it('warns at deploy of a subscriber name no publisher can expect, and of max deliveries that turn the quarantine off', async () => {
    const flow = receiptFlow(4, {}, [{ name: 'left,right', code: 'return msg;', maxDeliveries: -1 }]);
    await helper.load(nodes, flow);
    // The test helper spies on every node method: warn's calls are kept.
    const { warn } = helper.getNode('in-left,right') as unknown as { warn: { args: unknown[][] } };
    const warnings = warn.args.map((args) => String(args[0]));
    assert.ok(
      warnings.some((text) => /holds a comma/.test(text)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((text) => /quarantine is off/.test(text)),
      warnings.join('\n'),
    );
  });

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

  it('answers a copy that comes while its first copy is still in the flow by that copy\'s fate: a slow failure is not answered "delivered"', async () => {
    // The first copy fails after the receipt timeout: the copy sent meanwhile must not settle the message.
    const slowThenFine =
      "const seen = context.get('seen') || 0; context.set('seen', seen + 1);" +
      "if (seen === 0) { setTimeout(() => node.done(new Error('valve jammed, late')), 700); return null; }" +
      "global.set('handled', (global.get('handled') || 0) + 1); node.done(); return msg;";
    // No quarantine: it would hold the second copy back until the first has finished, as a suspect.
    const flow = receiptFlow(4, { receiptTimeout: 0.2 }, [
      { name: 'valve-controller', code: slowThenFine, maxDeliveries: 0 },
    ]);
    const inNode = flow.find((node) => node.id === 'in-valve-controller') as Record<string, unknown>;
    inNode.wires = [['dedupe1']];
    flow.push(dedupeNode({ id: 'dedupe1', persist: true, wires: [['fn-valve-controller'], []] }));
    await helper.load(nodes, flow);
    const receipts = collect(helper.getNode('receipts'));
    await connected();
    helper.getNode('out1').receive({ payload: 'open' });
    await waitFor(
      () => receipts.some((msg) => (msg.delivery as Delivery).status === 'delivered'),
      'the delivery',
      15_000,
    );
    const global = (helper.getNode('fn-valve-controller') as unknown as GlobalContextOwner).context().global;
    assert.equal(global.get('handled'), 1, 'delivered only once the function has handled it');
    const statuses = receipts.map((msg) => (msg.delivery as Delivery).status);
    assert.ok(statuses.includes('failed'), statuses.join(' '));
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

  it('quarantines a message whose flow keeps failing: the second output, a final negative receipt, the rest flows', async () => {
    const poisoned = "if (msg.payload === 'poison') throw new Error('cannot parse the recipe'); return msg;";
    await helper.load(
      nodes,
      receiptFlow(5, { receiptTimeout: 0.2 }, [{ name: 'mixer', code: poisoned, maxDeliveries: 3 }]),
    );
    const receipts = collect(helper.getNode('receipts'));
    const quarantined = collect(helper.getNode('quarantined-mixer'));
    const caught = collect(helper.getNode('caught'));
    const statuses = watchStatus(helper.getNode('in-mixer'));
    await connected();
    for (const payload of ['a', 'poison', 'b']) helper.getNode('out1').receive({ payload });
    await waitFor(
      () => receipts.filter((msg) => (msg.delivery as Delivery).status !== 'failed').length === 3,
      'the three outcomes',
      15_000,
    );
    const outcome = (payload: string) =>
      receipts
        .filter((msg) => msg.payload === payload)
        .map((msg) => (msg.delivery as Delivery).status)
        .join(' ');
    assert.equal(outcome('a'), 'delivered');
    assert.equal(outcome('b'), 'delivered');
    assert.equal(outcome('poison'), 'failed failed failed rejected', 'three tries, then quarantined');
    assert.equal(quarantined.length, 1);
    const quarantine = quarantined[0].quarantine as {
      attempts: number;
      lastError: string;
      firstSeen: number;
    };
    assert.equal(quarantine.attempts, 3);
    assert.match(quarantine.lastError, /cannot parse the recipe/);
    assert.equal(quarantined[0].payload, 'poison');
    const rejected = receipts.find((msg) => (msg.delivery as Delivery).status === 'rejected')!;
    assert.match(String((rejected.delivery as Delivery).error), /quarantined after 3 deliveries/);
    await waitFor(() => caught.length === 1, 'the rejection at the Catch node');
    assert.ok(
      statuses.some((status) => /1 quarantined/.test(String(status.text))),
      'the count in the status',
    );
    // Sent again now, it is answered at once and reaches neither output.
    helper.getNode('out1').receive({ payload: 'poison', messageId: quarantined[0].messageId });
    await waitFor(() => receipts.length === 7, 'the second rejection');
    assert.equal((receipts[6].delivery as Delivery).status, 'rejected');
    assert.equal(quarantined.length, 1, 'not to the quarantine output again');
  });
});

describe('end-to-end receipts over TCP: Mosquitto and the embedded broker, MQTT 3.1.1 and 5', () => {
  let mosquitto: Mosquitto;
  before(async function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
    mosquitto = new Mosquitto();
    await mosquitto.start();
    await helper.startServer();
  });
  beforeEach(() => helper.settings({ userDir: temporaryDirectory('durable-mqtt-receipts-') }));
  after(async () => {
    await helper.stopServer();
    await mosquitto?.dispose();
  });
  afterEach(() => helper.unload());

  for (const through of ['Mosquitto', 'the embedded broker over TCP'] as const) {
    for (const protocolVersion of [4, 5] as const) {
      it(`through ${through}, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a receipt from the flow that finished, a negative one from the flow that failed`, async () => {
        const port = through === 'Mosquitto' ? mosquitto.port : await freePort();
        const flow = receiptFlow(
          protocolVersion,
          {},
          [{ name: 'consumer', code: "if (msg.payload === 'bad') throw new Error('refused'); return msg;" }],
          port,
        );
        // Through Mosquitto, the embedded broker node is left out: the config points at Mosquitto.
        await helper.load(nodes, through === 'Mosquitto' ? flow.slice(1) : flow);
        const receipts = collect(helper.getNode('receipts'));
        await connected();
        helper.getNode('out1').receive({ payload: 'good' });
        helper.getNode('out1').receive({ payload: 'bad' });
        await waitFor(() => receipts.length >= 2, 'both answers');
        const status = (payload: string) =>
          (receipts.find((msg) => msg.payload === payload)?.delivery as Delivery | undefined)?.status;
        assert.equal(status('good'), 'delivered');
        assert.equal(status('bad'), 'failed');
      });
    }
  }
});

describe('end-to-end receipts across a restart of the publishing flow', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('keeps the messages awaiting receipts in the outbox, and delivers them after the restart with their stored msg', async () => {
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-receipts-') });
    // No consumer yet: the messages wait for receipts that cannot come.
    await helper.load(nodes, receiptFlow(4, { receiptTimeout: 60 }, []));
    const statuses = watchStatus(helper.getNode('out1'));
    await connected();
    helper.getNode('out1').receive({ payload: 'first', note: 'kept' });
    helper.getNode('out1').receive({ payload: 'second' });
    await waitFor(
      () => statuses.some((status) => /2 awaiting receipts/.test(String(status.text))),
      'two messages awaiting receipts',
    );
    await helper.unload();
    // The same flow with its consumer, as after a restart: the outbox sends both again.
    await helper.load(nodes, receiptFlow(4, { receiptTimeout: 60 }, [{ name: 'late', code: 'return msg;' }]));
    const receipts = collect(helper.getNode('receipts'));
    await waitFor(() => receipts.length === 2, 'both receipts after the restart');
    assert.deepEqual(
      receipts.map((msg) => [msg.payload, (msg.delivery as Delivery).status]),
      [
        ['first', 'delivered'],
        ['second', 'delivered'],
      ],
    );
    assert.equal(receipts[0].note, 'kept', 'the msg stored with the message');
    assert.ok((receipts[0].delivery as Delivery).attempts >= 2, 'counted as a resend');
  });
});
