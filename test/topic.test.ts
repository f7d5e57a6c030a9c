import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import {
  filterProblem,
  filtersOverlap,
  parseSharedFilter,
  publishTopicProblem,
  topicMatches,
} from '../nodes/lib/topic.js';
import { TopicTree } from '../nodes/lib/topic-tree.js';

// [filter, topic, matches] from MQTT 3.1.1 §4.7 and its examples.
const MATCHING: [string, string, boolean][] = [
  ['sport/tennis/player1/#', 'sport/tennis/player1', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
  ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
  ['sport/#', 'sport', true],
  ['#', 'anything/at/all', true],
  ['#', '/leading', true],
  ['sport/tennis/+', 'sport/tennis/player1', true],
  ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
  ['sport/+', 'sport', false],
  ['sport/+', 'sport/', true],
  ['+/+', '/finance', true],
  ['/+', '/finance', true],
  ['+', '/finance', false],
  ['+/tennis/#', 'sport/tennis/player1', true],
  ['a/b', 'a/b', true],
  ['a/b', 'a/B', false],
  ['a/b', 'a/b/c', false],
  ['a/+/c', 'a//c', true],
  ['#', '$SYS/broker/load', false],
  ['+/monitor/Clients', '$SYS/monitor/Clients', false],
  ['$SYS/#', '$SYS/monitor/Clients', true],
  ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
  ['$share/group/sensors/+', 'sensors/t1', true],
  ['$share/group/sensors/+', 'other/t1', false],
];

describe('topic names and filters', () => {
  it('accepts valid publish topics and names the problem with invalid ones', () => {
    assert.equal(publishTopicProblem('a/b/c'), undefined);
    assert.equal(publishTopicProblem('/'), undefined);
    assert.equal(publishTopicProblem('$SYS/x'), undefined);
    assert.equal(publishTopicProblem(''), 'empty');
    assert.equal(publishTopicProblem(undefined), 'not-a-string');
    assert.equal(publishTopicProblem(42), 'not-a-string');
    assert.equal(publishTopicProblem('a/+/b'), 'wildcard-in-topic');
    assert.equal(publishTopicProblem('a/#'), 'wildcard-in-topic');
    assert.equal(publishTopicProblem('a\u0000b'), 'nul-character');
    assert.equal(publishTopicProblem('x'.repeat(65536)), 'too-long');
  });

  it('accepts valid filters and names the problem with invalid ones', () => {
    for (const filter of ['#', '+', 'a/#', '+/+/#', 'a/+/c', '/', '$share/g/a/#', '$SYS/#'])
      assert.equal(filterProblem(filter), undefined, filter);
    assert.equal(filterProblem(''), 'empty');
    assert.equal(filterProblem('a/#/c'), 'hash-not-last');
    assert.equal(filterProblem('a#'), 'wildcard-not-whole-level');
    assert.equal(filterProblem('a/b+'), 'wildcard-not-whole-level');
    assert.equal(filterProblem('+a/b'), 'wildcard-not-whole-level');
    assert.equal(filterProblem('$share/g'), 'bad-shared-subscription');
    assert.equal(filterProblem('$share//a'), 'bad-shared-subscription');
    assert.equal(filterProblem('$share/g+/a'), 'bad-shared-subscription');
    assert.equal(filterProblem('$share/g/a/#/b'), 'hash-not-last');
  });

  it('parses shared subscriptions', () => {
    assert.deepEqual(parseSharedFilter('$share/workers/jobs/#'), { group: 'workers', filter: 'jobs/#' });
    assert.deepEqual(parseSharedFilter('jobs/#'), { group: undefined, filter: 'jobs/#' });
    assert.equal(parseSharedFilter('$share/workers'), null);
  });

  for (const [filter, topic, expected] of MATCHING) {
    it(`${expected ? 'matches' : 'does not match'} "${topic}" with "${filter}" (topicMatches and TopicTree agree)`, () => {
      assert.equal(topicMatches(filter, topic), expected);
      const tree = new TopicTree<string>();
      tree.add(filter, 'v');
      const seen: string[] = [];
      tree.match(topic, (v) => seen.push(v));
      assert.deepEqual(seen, expected ? ['v'] : []);
    });
  }
});

describe('filtersOverlap', () => {
  it('tells whether one topic can match two filters, $share prefixes aside', () => {
    const cases: [string, string, boolean][] = [
      ['jobs/#', '$share/g/jobs/#', true],
      ['jobs/+/done', '$share/g/jobs/7/+', true],
      ['jobs/+', 'jobs/a/b', false],
      ['jobs/a', 'jobs/b', false],
      ['jobs', 'jobs/#', true],
      ['#', '$share/g/+/x', true],
      ['a/+/c', 'a/b/+', true],
      ['a/+', 'a/+/+', false],
      ['#', '$SYS/broker/load', false],
      ['+/broker', '$SYS/#', false],
      ['$SYS/#', '$share/g/$SYS/broker', true],
    ];
    for (const [a, b, overlap] of cases) {
      assert.equal(filtersOverlap(a, b), overlap, `${a} and ${b}`);
      assert.equal(filtersOverlap(b, a), overlap, `${b} and ${a}`);
    }
  });
});

describe('TopicTree', () => {
  it('visits each matching value once per matching filter and forgets removed ones', () => {
    const tree = new TopicTree<string>();
    tree.add('a/#', 'hash');
    tree.add('a/+', 'plus');
    tree.add('a/b', 'exact');
    tree.add('a/b', 'exact2');
    tree.add('a/#', 'both');
    tree.add('a/b', 'both');
    assert.equal(tree.size, 6);
    const seen: string[] = [];
    tree.match('a/b', (v) => seen.push(v));
    assert.deepEqual(seen.sort(), ['both', 'both', 'exact', 'exact2', 'hash', 'plus']);
    tree.remove('a/b', 'both');
    tree.remove('a/#', 'both');
    tree.remove('a/b', 'never-added');
    tree.remove('x/y', 'never-added');
    assert.equal(tree.size, 4);
    const after: string[] = [];
    tree.match('a/b', (v) => after.push(v));
    assert.deepEqual(after.sort(), ['exact', 'exact2', 'hash', 'plus']);
  });

  it('prunes empty branches, so memory follows the filters that remain', () => {
    const tree = new TopicTree<number>();
    for (let i = 0; i < 1000; i++) tree.add(`deep/${i}/x/#`, i);
    for (let i = 0; i < 1000; i++) tree.remove(`deep/${i}/x/#`, i);
    assert.equal(tree.size, 0);
    const root = (tree as unknown as { root: { children: Map<string, unknown> } }).root;
    assert.equal(root.children.size, 0);
  });

  it('finds the exact and the wildcard filter among a thousand filters', () => {
    const tree = new TopicTree<number>();
    for (let i = 0; i < 1000; i++) tree.add(`site/${i}/temp`, i);
    tree.add('site/+/temp', -1);
    const seen: number[] = [];
    tree.match('site/500/temp', (v) => seen.push(v));
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [-1, 500],
    );
  });
});

describe('topic length in UTF-8 bytes', () => {
  it('accepts 65,535 bytes and refuses 65,536, whatever the characters take in UTF-8', () => {
    // 1, 2, 3 and 4 bytes a character; the last is a surrogate pair, two UTF-16 code units.
    for (const [character, bytes] of [
      ['x', 1],
      ['é', 2],
      ['€', 3],
      ['😀', 4],
    ] as const) {
      const count = Math.floor(65535 / bytes);
      const longest = character.repeat(count) + 'x'.repeat(65535 - count * bytes);
      assert.equal(Buffer.byteLength(longest), 65535);
      for (const check of [publishTopicProblem, filterProblem]) {
        assert.equal(check(longest), undefined, `65,535 bytes of ${character}`);
        assert.equal(check(longest + 'x'), 'too-long', `65,536 bytes of ${character}`);
        assert.equal(check(character.repeat(count + 1)), 'too-long', `${count + 1} times ${character}`);
      }
    }
  });
});
