import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { TopicAccess, filterWithin, type Identity } from '../nodes/lib/broker/acl.js';
import { AccessControl } from '../nodes/lib/broker/access-control.js';
import { resolveAccess } from '../nodes/lib/broker/access-settings.js';
import { hashPassword, isPasswordHash, verifyPassword } from '../nodes/lib/broker/passwords.js';

const alice: Identity = { username: 'alice', clientId: 'sensor-1' };

describe('access lists', () => {
  it('lets a subscription through only when every topic it matches is allowed', () => {
    const cases: [filter: string, pattern: string, within: boolean][] = [
      ['a/b', 'a/b', true],
      ['a/b', 'a/+', true],
      ['a/+', 'a/+', true],
      ['a/+', 'a/b', false],
      ['a/#', 'a/+', false],
      ['a/b/c', 'a/+', false],
      ['a', 'a/#', true],
      ['a/#', 'a/#', true],
      ['a/b/#', 'a/#', true],
      ['#', 'a/#', false],
      ['#', '#', true],
      ['+/b', 'a/b', false],
      ['$SYS/x', '#', false],
      ['$SYS/x', '+/x', false],
      ['$SYS/x', '$SYS/#', true],
      ['a//b', 'a/+/b', true],
    ];
    for (const [filter, pattern, within] of cases)
      assert.equal(filterWithin(filter, pattern), within, `${filter} within ${pattern}`);
  });

  it('puts the user name for %u and the client id for %c', () => {
    const access = new TopicAccess(['users/%u/#', 'devices/%c/state']);
    assert.ok(access.allowsTopic('users/alice/x', alice));
    assert.ok(!access.allowsTopic('users/bob/x', alice));
    assert.ok(access.allowsTopic('devices/sensor-1/state', alice));
    assert.ok(!access.allowsTopic('devices/sensor-2/state', alice));
    assert.ok(access.allowsFilter('users/alice/+', alice));
    assert.ok(!access.allowsFilter('users/+/x', alice));
  });

  it('never widens a pattern with a user name or client id holding /, + or #, nor fills an empty one', () => {
    const access = new TopicAccess(['devices/%c/#', 'users/%u/#']);
    for (const clientId of ['#', '+', 'a/b', ''])
      assert.ok(
        !access.allowsTopic('devices/x/y', { username: undefined, clientId }),
        `client id ${JSON.stringify(clientId)}`,
      );
    assert.ok(!access.allowsFilter('devices/#', { username: undefined, clientId: '#' }));
    assert.ok(!access.allowsTopic('users/x/y', { username: '+', clientId: 'c' }));
    assert.ok(!access.allowsTopic('users//y', { username: undefined, clientId: 'c' }));
  });

  it('reads an ordered list where the first match decides, and !pattern denies', () => {
    const access = new TopicAccess(['!secret/+', '+/+']);
    assert.ok(!access.unrestricted);
    assert.ok(access.denies);
    assert.ok(access.allowsTopic('open/x', alice));
    assert.ok(!access.allowsTopic('secret/x', alice), 'the denial comes first');
    assert.ok(!access.allowsFilter('secret/+', alice), 'a filter wholly denied');
    assert.ok(!access.allowsFilter('secret/x', alice));
    assert.ok(access.allowsFilter('+/+', alice), 'overlapping a denial: allowed, the denied topics withheld');
    const allowedFirst = new TopicAccess(['+/+', '!secret/+']);
    assert.ok(allowedFirst.allowsTopic('secret/x', alice), 'an allowance before it matches first');
    const everythingButSecrets = new TopicAccess(['!secret/#', '#']);
    assert.ok(!everythingButSecrets.unrestricted, '# after a denial is not everything');
    assert.ok(everythingButSecrets.allowsTopic('a/b/c', alice));
    assert.ok(!everythingButSecrets.allowsTopic('secret/a/b', alice));
    assert.ok(new TopicAccess(['#', '!secret/#']).unrestricted, '# first: every first match allows');
    const perUser = new TopicAccess(['!users/%u/private', 'users/%u/+']);
    assert.ok(!perUser.allowsTopic('users/alice/private', alice));
    assert.ok(perUser.allowsTopic('users/alice/public', alice));
    assert.ok(!new TopicAccess(['!', '  ']).allowsTopic('a', alice), 'empty patterns are ignored');
  });

  it('reads # alone as everything, $-topics included, and an empty list as nothing', () => {
    const all = new TopicAccess(['#']);
    assert.ok(all.unrestricted);
    assert.ok(all.allowsTopic('$share/x', alice));
    assert.ok(all.allowsFilter('$SYS/#', alice));
    const none = new TopicAccess([]);
    assert.ok(!none.allowsTopic('a', alice));
    assert.ok(!none.allowsFilter('a', alice));
  });

  it('judges a shared subscription by its inner filter', () => {
    const access = new TopicAccess(['jobs/#']);
    assert.ok(access.allowsFilter('$share/workers/jobs/+', alice));
    assert.ok(!access.allowsFilter('$share/workers/other/+', alice));
    assert.ok(!access.allowsFilter('$share//jobs', alice));
  });
});

describe('password hashes', () => {
  it('verifies the password it was made from and no other', async () => {
    const hash = await hashPassword('correct horse');
    assert.ok(isPasswordHash(hash));
    assert.ok(!hash.includes('correct horse'));
    assert.notEqual(hash, await hashPassword('correct horse'), 'salted');
    assert.ok(await verifyPassword('correct horse', hash));
    assert.ok(await verifyPassword(Buffer.from('correct horse'), hash));
    assert.ok(!(await verifyPassword('correct hors', hash)));
  });

  it('refuses a stored value that is not a hash, or asks for more memory than allowed', async () => {
    assert.ok(!isPasswordHash('plain text'));
    assert.ok(!(await verifyPassword('plain text', 'plain text')));
    const [prefix, , r, p, salt, key] = (await hashPassword('x')).split('$');
    const greedy = [prefix, 2 ** 24, r, p, salt, key].join('$');
    assert.ok(!isPasswordHash(greedy));
    assert.ok(!(await verifyPassword('x', greedy)));
  });
});

describe('access settings of the embedded broker node', () => {
  it('turns the single user of earlier versions into a user allowed everything, its password hashed', async () => {
    const resolved = await resolveAccess({}, { user: 'alice', password: 'secret' });
    assert.equal(resolved.config.users.length, 1);
    const [user] = resolved.config.users;
    assert.deepEqual([user.username, user.publish, user.subscribe], ['alice', ['#'], ['#']]);
    assert.ok(await verifyPassword('secret', user.passwordHash!));
    assert.equal(resolved.config.anonymous, undefined, 'no anonymous clients once a user exists');
    const stored = resolved.credentialsToStore!;
    assert.equal(stored.password, undefined, 'the plain password is not stored back');
    assert.ok(!JSON.stringify(stored).includes('secret'));
    assert.equal(JSON.parse(stored.passwords!).alice, user.passwordHash);
  });

  it('hashes a plain password found among the hashes, and stores nothing back when all are hashes', async () => {
    const hash = await hashPassword('b-secret');
    const settings = {
      accounts: [{ username: 'a' }, { username: 'b', publish: 'x/#, y', subscribe: [] }, { username: 'c' }],
    };
    const resolved = await resolveAccess(settings, { passwords: JSON.stringify({ a: 'typed in', b: hash }) });
    const [a, b] = resolved.config.users;
    assert.ok(await verifyPassword('typed in', a.passwordHash!));
    assert.equal(b.passwordHash, hash);
    assert.deepEqual(b.publish, ['x/#', 'y']);
    assert.deepEqual(b.subscribe, []);
    assert.deepEqual(resolved.usersWithoutPassword, ['c']);
    assert.ok(!resolved.credentialsToStore!.passwords!.includes('typed in'));
    const again = await resolveAccess(settings, resolved.credentialsToStore);
    assert.equal(again.credentialsToStore, undefined);
  });

  it('lets anonymous clients in only when ticked, or, for a flow from before the setting, when there is no user', async () => {
    assert.ok((await resolveAccess({}, undefined)).config.anonymous);
    assert.equal((await resolveAccess({ allowAnonymous: false }, undefined)).config.anonymous, undefined);
    const withUser = { accounts: [{ username: 'a' }] };
    assert.equal((await resolveAccess(withUser, undefined)).config.anonymous, undefined);
    const ticked = await resolveAccess(
      { ...withUser, allowAnonymous: true, anonymousPublish: [], anonymousSubscribe: ['public/#'] },
      undefined,
    );
    assert.deepEqual(ticked.config.anonymous, { publish: [], subscribe: ['public/#'] });
  });
});

describe('access control', () => {
  it('answers 4 to a wrong password or an unknown user, 5 to an anonymous client when refused', async () => {
    const hash = await hashPassword('right');
    const control = new AccessControl({
      users: [{ username: 'alice', passwordHash: hash, publish: ['#'], subscribe: ['#'] }],
      anonymous: undefined,
    });
    assert.deepEqual(await control.authenticate('alice', Buffer.from('right')), { accepted: true });
    assert.deepEqual(await control.authenticate('alice', Buffer.from('wrong')), {
      accepted: false,
      returnCode: 4,
    });
    assert.deepEqual(await control.authenticate('alice', undefined), { accepted: false, returnCode: 4 });
    assert.deepEqual(await control.authenticate('mallory', Buffer.from('right')), {
      accepted: false,
      returnCode: 4,
    });
    assert.deepEqual(await control.authenticate(undefined, undefined), { accepted: false, returnCode: 5 });
    // The second login with the same password is answered from memory, and a wrong one still is not.
    assert.deepEqual(await control.authenticate('alice', Buffer.from('right')), { accepted: true });
    assert.deepEqual(await control.authenticate('alice', Buffer.from('wrong')), {
      accepted: false,
      returnCode: 4,
    });
  });

  it('lets anyone in when there is no user and anonymous clients are allowed', async () => {
    const control = new AccessControl({ users: [], anonymous: { publish: ['#'], subscribe: ['#'] } });
    assert.ok(control.open);
    assert.deepEqual(await control.authenticate('whoever', Buffer.from('whatever')), { accepted: true });
    assert.ok(control.mayPublish({ username: 'whoever', clientId: 'c' }, 'a/b'));
  });
});
