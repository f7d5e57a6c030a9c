import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { SubscriptionTable } from '../nodes/lib/connection/subscription-table.js';
import type { IPublishPacket, QoS, SubscribeFailure, Subscriber } from '../nodes/lib/connection/types.js';

interface Received {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
}

/** A subscriber that records each copy it gets; `hold` is what its onMessage returns. */
function recorder(hold?: () => Promise<void>): Subscriber & { received: Received[] } {
  const received: Received[] = [];
  return {
    received,
    holdsAcknowledgments: hold !== undefined,
    onMessage(topic: string, payload: Buffer, packet: IPublishPacket) {
      received.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
      return hold?.();
    },
    onSubscribeFailure(_failure: SubscribeFailure) {},
  };
}

function publishPacket(topic: string, qos: QoS, subscriptionIdentifier?: number | number[]): IPublishPacket {
  const packet: IPublishPacket = {
    cmd: 'publish',
    topic,
    payload: Buffer.from('m'),
    qos,
    retain: false,
    dup: false,
  };
  if (subscriptionIdentifier !== undefined) packet.properties = { subscriptionIdentifier };
  return packet;
}

function dispatch(table: SubscriptionTable, packet: IPublishPacket) {
  return table.dispatch(packet.topic, packet.payload as Buffer, packet);
}

/** Every filter asked of the broker now, with the QoS and identifier asked. */
function requestAll(table: SubscriptionTable) {
  const requests = new Map<string, { qos: QoS; subscriptionId: number }>();
  for (const filter of table.allFilters()) {
    const request = table.requestAtBroker(filter);
    if (request) requests.set(filter, { qos: request.qos, subscriptionId: request.subscriptionId });
  }
  return requests;
}

describe('subscription table', () => {
  it('gives a subscriber one copy of a message that several of its filters match', () => {
    const table = new SubscriptionTable();
    const subscriber = recorder();
    for (const filter of ['a/b', 'a/+', 'a/#', '#']) table.add(filter, 1, subscriber, false);
    dispatch(table, publishPacket('a/b', 1));
    dispatch(table, publishPacket('a/b', 1));
    assert.equal(subscriber.received.length, 2);
  });

  it('gives each subscriber of a filter its own copy, and none to subscribers it does not match', () => {
    const table = new SubscriptionTable();
    const [first, second, other] = [recorder(), recorder(), recorder()];
    table.add('room/+', 0, first, false);
    table.add('room/+', 0, second, false);
    table.add('hall/#', 0, other, false);
    dispatch(table, publishPacket('room/1', 0));
    assert.deepEqual(
      [first, second, other].map((s) => s.received.length),
      [1, 1, 0],
    );
  });

  it('asks the broker for each filter once, at the highest QoS its subscribers want', () => {
    const table = new SubscriptionTable();
    table.add('t', 0, recorder(), false);
    table.add('t', 2, recorder(), false);
    table.add('t', 1, recorder(), false);
    assert.deepEqual(
      [...requestAll(table)].map(([filter, { qos }]) => [filter, qos]),
      [['t', 2]],
    );
    assert.equal(table.requestAtBroker('t'), undefined, 'held already: not asked again');
    assert.deepEqual([...table.brokerSubscriptions()], [['t', 2]]);
  });

  it('asks the broker again when a subscriber wants a higher QoS than the one held', () => {
    const table = new SubscriptionTable();
    table.add('t', 0, recorder(), false);
    requestAll(table);
    table.add('t', 1, recorder(), false);
    assert.equal(table.requestAtBroker('t')?.qos, 1);
  });

  it('asks again for what the broker refused or a new session forgot', () => {
    const table = new SubscriptionTable();
    const refusedOne = recorder();
    table.add('a', 1, refusedOne, false);
    table.add('b', 1, recorder(), false);
    requestAll(table);
    assert.deepEqual(table.refused('a'), [refusedOne]);
    assert.deepEqual([...table.brokerSubscriptions().keys()], ['b']);
    table.brokerSessionLost();
    assert.equal(table.brokerSubscriptions().size, 0);
    assert.deepEqual([...requestAll(table).keys()], ['a', 'b']);
  });

  it('gives each filter its own subscription identifier', () => {
    const table = new SubscriptionTable();
    for (const filter of ['a', 'b', 'c']) table.add(filter, 0, recorder(), false);
    table.add('a', 1, recorder(), false);
    const ids = [...requestAll(table).values()].map(({ subscriptionId }) => subscriptionId);
    assert.equal(new Set(ids).size, 3);
  });

  it('takes, of the MQTT 5 copies of a message, only the one naming the lowest subscription that matches', () => {
    const table = new SubscriptionTable();
    const both = recorder();
    const wide = recorder();
    table.add('a/+', 1, both, false);
    table.add('a/#', 1, both, false);
    table.add('a/#', 1, wide, false);
    const ids = requestAll(table);
    const narrowId = ids.get('a/+')!.subscriptionId;
    const wideId = ids.get('a/#')!.subscriptionId;
    // The broker sends one copy per subscription, each naming its own.
    dispatch(table, publishPacket('a/b', 1, narrowId));
    dispatch(table, publishPacket('a/b', 1, wideId));
    assert.equal(both.received.length, 1, 'one copy for the subscriber of both filters');
    assert.equal(wide.received.length, 1, 'one copy for the subscriber of a/# alone');
    // A copy may also name several subscriptions at once.
    dispatch(table, publishPacket('a/c', 1, [narrowId, wideId]));
    assert.deepEqual([both.received.length, wide.received.length], [2, 2]);
  });

  it('returns the holds on a QoS 1/2 acknowledgment, and none at QoS 0 or when no subscriber holds', async () => {
    const table = new SubscriptionTable();
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    table.add(
      't',
      2,
      recorder(() => held),
      false,
    );
    table.add('t', 2, recorder(), false);
    const holds = dispatch(table, publishPacket('t', 1));
    assert.equal(holds?.length, 1);
    assert.equal(dispatch(table, publishPacket('t', 0)), undefined);
    assert.equal(dispatch(table, publishPacket('other', 1)), undefined);
    release();
    await Promise.all(holds!);
  });

  it('tells whether a subscriber that holds acknowledgments matches a topic', () => {
    const table = new SubscriptionTable();
    table.add('plain/#', 1, recorder(), false);
    table.add(
      'held/#',
      1,
      recorder(async () => {}),
      false,
    );
    assert.equal(table.matchesHolder('plain/x'), false);
    assert.equal(table.matchesHolder('held/x'), true);
  });

  it('keeps a filter while a subscriber holds it, and hands it back when the last one leaves', () => {
    const table = new SubscriptionTable();
    const [first, second] = [recorder(), recorder()];
    table.add('t', 1, first, false);
    table.add('t', 2, second, false);
    assert.equal(table.remove('t', first), undefined, 'another subscriber holds it');
    dispatch(table, publishPacket('t', 1));
    assert.deepEqual([first.received.length, second.received.length], [0, 1]);
    const left = table.remove('t', second);
    assert.equal(left?.qos, 2);
    assert.equal(table.has('t'), true, 'the caller decides what becomes of it');
    table.deleteFilter('t');
    assert.equal(table.has('t'), false);
    assert.equal(table.remove('t', second), undefined, 'removing twice does nothing');
  });

  it('lists and forgets the filters of a subscriber', () => {
    const table = new SubscriptionTable();
    const subscriber = recorder();
    table.add('a', 1, subscriber, false);
    table.add('b/#', 2, subscriber, false);
    assert.deepEqual(table.filtersOf(subscriber), ['a', 'b/#']);
    assert.deepEqual(table.subscriptionsOf(subscriber), [
      { topic: 'a', qos: 1, nl: false, rap: false, rh: 0 },
      { topic: 'b/#', qos: 2, nl: false, rap: false, rh: 0 },
    ]);
    for (const filter of table.filtersOf(subscriber)) table.remove(filter, subscriber);
    assert.deepEqual(table.subscriptionsOf(subscriber), []);
  });

  it('lists for unsubscribing at close the filters held at the broker that no subscriber made durable', () => {
    const table = new SubscriptionTable();
    table.add('kept', 1, recorder(), true);
    table.add('mixed', 1, recorder(), false);
    table.add('mixed', 1, recorder(), true);
    table.add('dropped', 1, recorder(), false);
    table.add('never-granted', 1, recorder(), false);
    for (const filter of ['kept', 'mixed', 'dropped']) table.requestAtBroker(filter);
    assert.deepEqual(table.nonDurableAtBroker(), ['dropped']);
    // A subscriber asking again for durability makes its existing subscription durable.
    const subscriber = recorder();
    table.add('again', 1, subscriber, false);
    table.requestAtBroker('again');
    table.add('again', 1, subscriber, true);
    assert.deepEqual(table.nonDurableAtBroker(), ['dropped']);
  });

  it('finds an overlapping filter when one of the two is shared', () => {
    const table = new SubscriptionTable();
    table.add('a/#', 0, recorder(), false);
    table.add('b/c', 0, recorder(), false);
    assert.equal(table.sharedOverlap('$share/g/a/b'), 'a/#');
    assert.equal(table.sharedOverlap('$share/g/x/y'), undefined);
    assert.equal(table.sharedOverlap('b/+'), undefined, 'two plain filters: MQTT tells them apart');
    table.add('$share/g/b/#', 0, recorder(), false);
    assert.equal(table.sharedOverlap('b/d'), '$share/g/b/#');
  });

  describe('from a core session', () => {
    it('delivers each subscriber one copy at the lowest of the published QoS and the highest granted', () => {
      const table = new SubscriptionTable();
      const subscriber = recorder();
      table.add('a/+', 0, subscriber, false);
      table.add('a/#', 1, subscriber, false);
      requestAll(table);
      table.dispatchFromCoreSession('a/b', Buffer.from('x'), 2, false);
      table.dispatchFromCoreSession('a/b', Buffer.from('y'), 0, true);
      assert.deepEqual(subscriber.received, [
        { topic: 'a/b', payload: 'x', qos: 1, retain: false },
        { topic: 'a/b', payload: 'y', qos: 0, retain: true },
      ]);
    });

    it('delivers to subscriptions made, granted or removed after a topic was first matched', () => {
      const table = new SubscriptionTable();
      const first = recorder();
      table.add('t', 0, first, false);
      requestAll(table);
      table.dispatchFromCoreSession('t', Buffer.from('1'), 2, false);
      const second = recorder();
      table.add('t', 2, second, false);
      table.dispatchFromCoreSession('t', Buffer.from('2'), 2, false);
      assert.equal(second.received.length, 1, 'a new subscriber gets the next message');
      assert.equal(second.received[0].qos, 0, 'at the QoS the broker still holds');
      requestAll(table);
      table.dispatchFromCoreSession('t', Buffer.from('3'), 2, false);
      assert.equal(second.received[1].qos, 2, 'at the QoS granted since');
      table.remove('t', first);
      table.dispatchFromCoreSession('t', Buffer.from('4'), 2, false);
      assert.deepEqual(
        first.received.map((m) => m.payload),
        ['1', '2', '3'],
      );
    });
  });

  describe('MQTT 5 subscription options of a filter that several subscribers hold', () => {
    const none = { nl: false, rap: false, rh: 0 } as const;

    it('asks the broker for the options of a single subscriber as given', () => {
      const table = new SubscriptionTable();
      const conflict = table.add('t/#', 1, recorder(), false, { nl: true, rap: true, rh: 2 });
      assert.equal(conflict, undefined);
      assert.deepEqual(table.requestAtBroker('t/#')?.options, { nl: true, rap: true, rh: 2 });
      assert.equal(table.requestAtBroker('t/#'), undefined, 'held as asked: not asked again');
    });

    it('merges so that each gets its messages, reports the conflict, and asks the broker again', () => {
      const table = new SubscriptionTable();
      table.add('t/#', 1, recorder(), false, { nl: true, rap: false, rh: 2 });
      table.requestAtBroker('t/#');
      const conflict = table.add('t/#', 1, recorder(), false, none);
      assert.deepEqual(
        conflict,
        { asked: { nl: true, rap: false, rh: 2 }, inForce: none },
        'the first one no longer gets what it asked: the options of the second withhold nothing',
      );
      assert.deepEqual(table.requestAtBroker('t/#')?.options, none, 'the merged options go to the broker');
      const third = table.add('t/#', 1, recorder(), false, { nl: true, rap: true, rh: 1 });
      assert.deepEqual(third, {
        asked: { nl: true, rap: true, rh: 1 },
        inForce: { nl: false, rap: true, rh: 0 },
      });
    });

    it('reports no conflict when a subscriber asks what is in force', () => {
      const table = new SubscriptionTable();
      table.add('t/#', 1, recorder(), false, { nl: true, rap: true, rh: 1 });
      assert.equal(table.add('t/#', 2, recorder(), false, { nl: true, rap: true, rh: 1 }), undefined);
    });
  });
});
