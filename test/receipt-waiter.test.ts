import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'mocha';
import { MemoryOutboxStore } from '../nodes/lib/outbox/memory-store.js';
import { DurablePublisher } from '../nodes/lib/outbox/durable-publisher.js';
import type { EndToEndReceipt, ReceiptOptions } from '../nodes/lib/outbox/receipt-waiter.js';
import { decodeReceipts, encodeReceipts, receiptJson, type SubscriberReceipt } from '../nodes/lib/receipt.js';
import { MAX_RECEIPT_BATCH_BYTES, ReceiptReplies } from '../nodes/node-red/receipt-reply.js';
import { expectationMet, parseExpectation } from '../nodes/lib/receipt-expectation.js';
import { newMessageId, unwrapEnvelope, wrapEnvelope } from '../nodes/lib/end-to-end-id.js';
import { delay, waitFor } from './support/wait.js';

/** What the publisher uses of a connection: it records each send and acknowledges it when told to. */
class ManualBroker extends EventEmitter {
  connected = true;
  receiveMaximum: number | undefined = undefined;
  /** Message ids in the order they were sent, resends included. */
  readonly sent: string[] = [];
  private readonly unacknowledged: (() => void)[] = [];
  autoAck = true;
  publish(_topic: string, payload: Buffer, _options: object, callback: (error?: Error) => void) {
    this.sent.push(payload.toString());
    if (this.autoAck) queueMicrotask(() => callback());
    else this.unacknowledged.push(() => callback());
  }
  acknowledgeAll() {
    for (const ack of this.unacknowledged.splice(0)) ack();
  }
}

const OPTIONS: ReceiptOptions = {
  expectation: { count: 1 },
  timeoutMs: 60_000,
  giveUpAfterMs: 0,
  maxAwaiting: 1000,
};

async function openPublisher(broker: ManualBroker, store = new MemoryOutboxStore(), options = OPTIONS) {
  const publisher = await DurablePublisher.open<never>({
    store,
    limits: { maxMessages: 1e6, maxBytes: 1e9, overflow: 'rejectNew' },
    connection: broker,
    receipts: options,
  });
  const outcomes: EndToEndReceipt[] = [];
  publisher.on('end-to-end', (receipt) => outcomes.push(receipt));
  return { publisher, outcomes, store };
}

/** Appends a message whose payload is its id, so the broker's record says which went. */
function append(publisher: DurablePublisher<never>, id = newMessageId()) {
  void publisher.accept({ topic: 't', payload: Buffer.from(id), qos: 1, retain: false, messageId: id });
  return id;
}

const receipt = (messageId: string, by = 'consumer', extra: Partial<SubscriberReceipt> = {}) => ({
  messageId,
  by,
  ok: true,
  at: Date.now(),
  ...extra,
});

describe('receipt waiter (until: subscriber)', () => {
  it('keeps a message after the broker acknowledged it, and lets it go on its receipt', async () => {
    const broker = new ManualBroker();
    const { publisher, outcomes } = await openPublisher(broker);
    const id = append(publisher);
    await waitFor(() => publisher.awaitingReceipts === 1, 'the message awaiting its receipt');
    assert.equal(publisher.queued, 1, 'still in the outbox');
    publisher.receive(receipt(id));
    await waitFor(() => outcomes.length === 1, 'the outcome');
    assert.equal(outcomes[0].status, 'delivered');
    assert.equal(publisher.queued, 0);
    publisher.receive(receipt(id));
    await delay(20);
    assert.equal(outcomes.length, 1, 'a repeated receipt changes nothing');
    await publisher.close(false);
  });

  it('takes a receipt that comes before the broker acknowledgment', async () => {
    const broker = new ManualBroker();
    broker.autoAck = false;
    const { publisher, outcomes } = await openPublisher(broker);
    const id = append(publisher);
    await waitFor(() => broker.sent.length === 1, 'the send');
    publisher.receive(receipt(id));
    assert.equal(outcomes.length, 0, 'not before the broker has it');
    broker.acknowledgeAll();
    await waitFor(() => outcomes.length === 1, 'the outcome');
    assert.equal(outcomes[0].status, 'delivered');
    assert.equal(publisher.awaitingReceipts, 0);
    await publisher.close(false);
  });

  it('after a restart, settles without a send a stored message whose receipt arrives before its turn', async () => {
    const broker = new ManualBroker();
    broker.connected = false;
    const first = await openPublisher(broker);
    const id = append(first.publisher);
    await delay(20);
    await first.publisher.close(false);
    const again = await openPublisher(broker, first.store);
    again.publisher.receive(receipt(id));
    broker.connected = true;
    broker.emit('status', { state: 'connected' });
    await waitFor(() => again.outcomes.length === 1, 'the outcome');
    assert.equal(again.outcomes[0].status, 'delivered');
    assert.deepEqual(broker.sent, [], 'nothing sent: the receipt had come');
    await again.publisher.close(false);
  });

  it('sends again with the same id when no receipt comes, waiting twice as long each time', async () => {
    const broker = new ManualBroker();
    const { publisher, outcomes } = await openPublisher(broker, undefined, { ...OPTIONS, timeoutMs: 100 });
    const sentAt: number[] = [];
    const publish = broker.publish.bind(broker);
    broker.publish = (topic, payload, options, callback) => {
      sentAt.push(Date.now());
      publish(topic, payload, options, callback);
    };
    const id = append(publisher);
    await waitFor(() => sentAt.length === 3, 'three sends', 5000);
    publisher.receive(receipt(id));
    await waitFor(() => outcomes.length === 1, 'the outcome');
    assert.deepEqual(new Set(broker.sent), new Set([id]), 'every send carries the one id');
    assert.equal(outcomes[0].attempts, 3);
    const [firstWait, secondWait] = [sentAt[1] - sentAt[0], sentAt[2] - sentAt[1]];
    assert.ok(secondWait > firstWait * 1.5, `waits ${firstWait} ms, then ${secondWait} ms`);
    await publisher.close(false);
  });

  it('pauses sending while maxAwaiting messages wait for receipts, and goes on as they come', async () => {
    const broker = new ManualBroker();
    const { publisher } = await openPublisher(broker, undefined, { ...OPTIONS, maxAwaiting: 5 });
    const ids = Array.from({ length: 30 }, () => append(publisher));
    await waitFor(() => publisher.awaitingReceipts >= 5, 'the window full');
    await delay(50);
    const sentBefore = broker.sent.length;
    assert.ok(sentBefore < 30, `${sentBefore} sent while 5 may await receipts`);
    for (const id of ids) publisher.receive(receipt(id));
    await waitFor(() => publisher.queued === 0, 'every message settled', 5000);
    await publisher.close(false);
  });

  it('waits for every subscriber an expectation names, or for N different ones', async () => {
    const broker = new ManualBroker();
    const named = await openPublisher(broker, undefined, { ...OPTIONS, expectation: { names: ['a', 'b'] } });
    const id = append(named.publisher);
    await waitFor(() => named.publisher.awaitingReceipts === 1, 'awaiting');
    named.publisher.receive(receipt(id, 'a'));
    named.publisher.receive(receipt(id, 'c'));
    named.publisher.receive(receipt(id, 'a'));
    await delay(20);
    assert.equal(named.outcomes.length, 0, 'b has not answered');
    named.publisher.receive(receipt(id, 'b'));
    await waitFor(() => named.outcomes.length === 1, 'the outcome');
    assert.deepEqual(named.outcomes[0].receipts.map(({ by }) => by).sort(), ['a', 'b', 'c']);
    await named.publisher.close(false);
    assert.equal(expectationMet({ count: 2 }, new Set(['x'])), false);
    assert.equal(expectationMet({ count: 2 }, new Set(['x', 'y'])), true);
  });

  it('tells a negative receipt and keeps the message; a final one rejects it', async () => {
    const broker = new ManualBroker();
    const { publisher, outcomes } = await openPublisher(broker);
    const id = append(publisher);
    await waitFor(() => publisher.awaitingReceipts === 1, 'awaiting');
    publisher.receive(receipt(id, 'worker', { ok: false, error: 'jammed' }));
    await waitFor(() => outcomes.length === 1, 'the failed receipt');
    assert.deepEqual([outcomes[0].status, outcomes[0].by, outcomes[0].error], ['failed', 'worker', 'jammed']);
    assert.equal(publisher.queued, 1, 'kept, to be sent again');
    publisher.receive(receipt(id, 'worker', { ok: false, error: 'quarantined', final: true }));
    await waitFor(() => outcomes.length === 2, 'the rejection');
    assert.equal(outcomes[1].status, 'rejected');
    assert.equal(publisher.queued, 0);
    await publisher.close(false);
  });

  it('leaves a message stored before receipts were asked for to the broker acknowledgment', async () => {
    const broker = new ManualBroker();
    const { publisher, outcomes } = await openPublisher(broker);
    const delivered: unknown[] = [];
    publisher.on('delivered', (r) => delivered.push(r));
    void publisher.accept({ topic: 't', payload: Buffer.from('old'), qos: 1, retain: false });
    await waitFor(() => delivered.length === 1, 'the broker acknowledgment');
    assert.equal(publisher.queued, 0);
    assert.equal(outcomes.length, 0);
    await publisher.close(false);
  });
});

describe('receipt wire format', () => {
  it('decodes what it encodes, and nothing else', () => {
    const sent: SubscriberReceipt = {
      messageId: newMessageId(),
      by: 'b',
      ok: false,
      at: 1,
      error: 'x'.repeat(5000),
      final: true,
    };
    const [decoded, ...more] = decodeReceipts(encodeReceipts([receiptJson(sent)])) ?? [];
    assert.equal(more.length, 0);
    assert.equal(decoded?.error?.length, 1000, 'the error text is capped');
    assert.deepEqual({ ...decoded, error: undefined }, { ...sent, error: undefined });
    const good = receiptJson({ messageId: newMessageId(), by: 'b', ok: true, at: 1 });
    for (const stray of [
      '',
      'null',
      '[]',
      '[[]]',
      '{"receipt":1}',
      '{"receipt":"a","by":"","ok":true,"at":1}',
      `[${good},{"receipt":1}]`,
      'not json',
    ])
      assert.equal(decodeReceipts(Buffer.from(stray)), undefined, stray);
  });

  it('reads a lone receipt as an object and several as an array of them', () => {
    const sent = ['a', 'b', 'c'].map((by): SubscriberReceipt => ({
      messageId: newMessageId(),
      by,
      ok: true,
      at: 2,
    }));
    const alone = encodeReceipts([receiptJson(sent[0])]);
    assert.equal(alone.toString()[0], '{', 'a lone receipt keeps the format other clients know');
    assert.deepEqual(decodeReceipts(alone), [sent[0]]);
    const batch = encodeReceipts(sent.map(receiptJson));
    assert.equal(batch.toString()[0], '[');
    assert.deepEqual(decodeReceipts(batch), sent);
  });

  it('sends the receipts of one turn to one topic as one message, a lone one with its correlation data', async () => {
    const published: { topic: string; payload: Buffer; options: { properties?: object } }[] = [];
    const connection = Object.assign(new EventEmitter(), {
      connected: true,
      receiveMaximum: undefined,
      options: { protocolVersion: 5 },
      publish(
        topic: string,
        payload: Buffer,
        options: { properties?: object },
        callback: (error?: Error) => void,
      ) {
        published.push({ topic, payload, options });
        callback();
      },
    });
    const replies = new ReceiptReplies(connection, () => assert.fail('no failure'));
    const receipt = (by: string): SubscriberReceipt => ({ messageId: newMessageId(), by, ok: true, at: 3 });
    const correlationData = Buffer.from('id-1');
    replies.send({ topic: 'r/a', correlationData }, receipt('x'));
    await delay(5);
    assert.equal(published.length, 1);
    assert.deepEqual(published[0].options.properties, { correlationData });

    published.length = 0;
    const many = Array.from({ length: 400 }, (_, i) => receipt(`s${i}`));
    for (const one of many) replies.send({ topic: 'r/a', correlationData }, one);
    replies.send({ topic: 'r/b' }, receipt('y'));
    const beforeTheTurn = published.length;
    assert.ok(beforeTheTurn >= 1, 'past the size bound a batch goes at once');
    await delay(5);
    assert.ok(published.length >= beforeTheTurn + 2, 'the rest, on each topic, goes at the end of the turn');
    const onA = published.filter(({ topic }) => topic === 'r/a');
    for (const { payload, options } of onA) {
      assert.ok(payload.length <= MAX_RECEIPT_BATCH_BYTES, `${payload.length} bytes`);
      assert.equal(options.properties, undefined, 'a batch answers many correlation data: it echoes none');
    }
    assert.deepEqual(
      onA.flatMap(({ payload }) => decodeReceipts(payload) ?? []),
      many,
      'every receipt, in order',
    );
    assert.equal(published.filter(({ topic }) => topic === 'r/b').length, 1);
  });

  it('reads expect: empty, a count, or names', () => {
    assert.deepEqual(parseExpectation(''), { count: 1 });
    assert.deepEqual(parseExpectation(' 3 '), { count: 3 });
    assert.deepEqual(parseExpectation('a, b,a'), { names: ['a', 'b'] });
    for (const bad of ['0', 'a,,b', '1001']) assert.equal(parseExpectation(bad), undefined, bad);
  });

  it('carries the reply topic in the MQTT 3.1.1 envelope', () => {
    const id = newMessageId();
    const wrapped = wrapEnvelope(id, Buffer.from([0xff, 0x00]), 'durable-mqtt/receipts/n1');
    assert.deepEqual(unwrapEnvelope(wrapped), {
      id,
      payload: Buffer.from([0xff, 0x00]),
      reply: 'durable-mqtt/receipts/n1',
    });
    assert.equal(unwrapEnvelope(Buffer.from(JSON.stringify({ id, payload: 'p', reply: 7 }))), undefined);
    const withByteOrderMark = Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69]);
    assert.deepEqual(
      unwrapEnvelope(wrapEnvelope(id, withByteOrderMark))?.payload,
      withByteOrderMark,
      'every byte',
    );
  });
});
