import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
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
