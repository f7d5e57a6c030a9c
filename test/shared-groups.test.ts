import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { ClusterShares } from '../nodes/lib/broker/shared-cluster.js';
import { SharedGroups, type ShareMember } from '../nodes/lib/broker/shared-groups.js';

class Member implements ShareMember {
  constructor(
    readonly clientId: string,
    public connected = true,
    public persistent = false,
  ) {}
}

function take(
  groups: SharedGroups<Member>,
  count: number,
  group = 'g',
  filter = 'jobs/#',
): (string | undefined)[] {
  const subscription = groups.get(group, filter);
  return Array.from({ length: count }, () => {
    const choice = subscription?.choose();
    return choice && `${choice.member.clientId}${choice.queued ? ' (queued)' : ''}`;
  });
}

describe('shared subscription groups', () => {
  it('hands messages to the connected members in turn, and says which join created the shared subscription', () => {
    const groups = new SharedGroups<Member>();
    assert.equal(groups.join('g', 'jobs/#', new Member('a')).created, true);
    assert.equal(groups.join('g', 'jobs/#', new Member('b')).created, false);
    assert.equal(
      groups.join('g', 'jobs/+', new Member('c')).created,
      true,
      'another filter is another shared subscription',
    );
    assert.equal(groups.join('h', 'jobs/#', new Member('a')).created, true, 'another group too');
    groups.join('g', 'jobs/#', new Member('c'));
    assert.deepEqual(take(groups, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('skips members not connected, and those the caller refuses', () => {
    const groups = new SharedGroups<Member>();
    const b = new Member('b', false);
    for (const member of [new Member('a'), b, new Member('c')]) groups.join('g', 'jobs/#', member);
    assert.deepEqual(take(groups, 4), ['a', 'c', 'a', 'c']);
    b.connected = true;
    const subscription = groups.get('g', 'jobs/#');
    assert.deepEqual(
      [1, 2, 3].map(() => subscription?.choose((member) => member.clientId !== 'c')?.member.clientId),
      ['a', 'b', 'a'],
    );
  });

  it('queues for a member with a persistent session when none is connected, and for nobody without one', () => {
    const groups = new SharedGroups<Member>();
    groups.join('g', 'jobs/#', new Member('clean', false));
    assert.deepEqual(take(groups, 1), [undefined]);
    groups.join('g', 'jobs/#', new Member('p1', false, true));
    groups.join('g', 'jobs/#', new Member('p2', false, true));
    assert.deepEqual(take(groups, 3), ['p1 (queued)', 'p2 (queued)', 'p1 (queued)']);
  });

  it('keeps one membership per client id; leaving forgets the shared subscription once it has no member', () => {
    const groups = new SharedGroups<Member>();
    const first = new Member('a');
    const second = new Member('a');
    groups.join('g', 'jobs/#', first);
    groups.join('g', 'jobs/#', new Member('b'));
    groups.join('g', 'jobs/#', second);
    assert.deepEqual(take(groups, 3), ['a', 'b', 'a']);
    assert.equal(groups.get('g', 'jobs/#')?.get('a'), second);
    assert.equal(
      groups.leave('g', 'jobs/#', 'a', first),
      undefined,
      'an older membership replaced leaves nothing',
    );
    assert.equal(groups.get('g', 'jobs/#')?.size, 2);
    assert.equal(groups.leave('g', 'jobs/#', 'a'), undefined);
    assert.deepEqual(take(groups, 2), ['b', 'b']);
    assert.equal(groups.leave('g', 'jobs/#', 'b')?.filter, 'jobs/#');
    assert.equal(groups.get('g', 'jobs/#'), undefined);
    assert.deepEqual(groups.all(), []);
  });
});

describe('shared subscriptions across the brokers on one Redis', () => {
  const messages = Array.from({ length: 300 }, (_, n) => `origin:${n}`);

  it('makes exactly one broker owner of each message, the same seen from each, and spreads them', () => {
    const views = ['b1', 'b2', 'b3'].map((id) => new ClusterShares(id, 6000));
    for (const view of views)
      for (const other of ['b1', 'b2', 'b3'])
        view.heard(other, { connected: other === 'b3' ? [] : ['g/jobs/#'], persistent: [] });
    const owners = messages.map((message) =>
      views
        .filter((view) =>
          view.owns('g/jobs/#', { connected: view.brokerId !== 'b3', persistent: false }, message),
        )
        .map((view) => view.brokerId),
    );
    assert.ok(
      owners.every((owner) => owner.length === 1 && owner[0] !== 'b3'),
      'one owner, with a member connected',
    );
    const b1 = owners.filter(([owner]) => owner === 'b1').length;
    assert.ok(b1 > 100 && b1 < 200, `b1 owns ${b1} of 300`);
  });

  it('draws among the brokers with a persistent member only when none has one connected, and forgets a silent broker', () => {
    let now = 0;
    const view = new ClusterShares('here', 6000, () => now);
    assert.equal(
      view.heard('there', { connected: [], persistent: ['g/jobs/#'] }),
      true,
      'a broker heard of first',
    );
    assert.equal(view.heard('there', { connected: [], persistent: ['g/jobs/#'] }), false);
    assert.ok(messages.every((m) => view.owns('g/jobs/#', { connected: true, persistent: false }, m)));
    const persistentHere = messages.filter((m) =>
      view.owns('g/jobs/#', { connected: false, persistent: true }, m),
    );
    assert.ok(persistentHere.length > 0 && persistentHere.length < messages.length);
    now = 7000;
    assert.ok(messages.every((m) => view.owns('g/jobs/#', { connected: false, persistent: true }, m)));
    assert.ok(!view.owns('g/jobs/#', { connected: false, persistent: false }, messages[0]));
  });
});
