import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import { NodeRedRig } from './support/crash-rig.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { embeddedBrokerNode } from './support/flows.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';

const BROKER = 'b00000000000cred';
const PASSWORD = 'plain-text-never-stored-7f3a';
const LEGACY_PASSWORD = 'legacy-plain-text-9c1e';

describe('embedded broker passwords at rest', () => {
  let rig: NodeRedRig;
  let port: number;

  const flowFile = () => readFileSync(path.join(rig.userDir, 'flows.json'), 'utf8');
  // credentialSecret: false in the rig, so the credentials file can be read as it is.
  const credentialsFile = () => readFileSync(path.join(rig.userDir, 'flows_cred.json'), 'utf8');

  async function deploy(nodes: unknown[]) {
    const response = await fetch(`${rig.url}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify([{ id: 'tab1', type: 'tab', label: 'broker' }, ...nodes]),
    });
    assert.ok(response.ok, `POST /flows answered ${response.status} ${await response.text()}`);
  }

  const brokerNode = (extra: Record<string, unknown>) =>
    embeddedBrokerNode(port, { id: BROKER, z: 'tab1', ...extra });

  before(async () => {
    port = await freePort();
    rig = new NodeRedRig([]);
    await rig.start();
  });
  after(async () => {
    await rig.stop();
  });

  it('stores only the hash the runtime made of a new password, in the credentials file, never in the flow file', async () => {
    const response = await fetch(`${rig.url}/durable-mqtt-embedded-broker/password-hash`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: PASSWORD }),
    });
    assert.equal(response.status, 200);
    const { hash } = (await response.json()) as { hash: string };
    assert.match(hash, /^scrypt\$/);
    await deploy([
      brokerNode({
        accounts: [{ username: 'alice', publish: ['#'], subscribe: ['#'] }],
        allowAnonymous: false,
        credentials: { passwords: JSON.stringify({ alice: hash }) },
      }),
    ]);
    const client = await connectWhenListening(port, { username: 'alice', password: PASSWORD });
    await client.endAsync();
    assert.ok(!flowFile().includes(PASSWORD) && !flowFile().includes(hash), 'the flow file holds neither');
    assert.ok(!credentialsFile().includes(PASSWORD), 'the credentials file holds no plain password');
    assert.ok(credentialsFile().includes(hash), 'the credentials file holds the hash');
  });

  it('refuses to hash what is not a password', async () => {
    for (const body of [{}, { password: '' }, { password: 42 }, { password: 'x'.repeat(2000) }]) {
      const response = await fetch(`${rig.url}/durable-mqtt-embedded-broker/password-hash`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 400, JSON.stringify(body).slice(0, 40));
    }
  });

  it('replaces the plain password of an earlier version by its hash at the next deploy', async () => {
    await deploy([brokerNode({ credentials: { user: 'bob', password: LEGACY_PASSWORD } })]);
    const client = await connectWhenListening(port, { username: 'bob', password: LEGACY_PASSWORD });
    await client.endAsync();
    // Node-RED wrote the credentials at this deploy, before the node started: the plain text is there once.
    assert.ok(credentialsFile().includes(LEGACY_PASSWORD));
    await deploy([brokerNode({ name: 'renamed' })]);
    await waitFor(() => !credentialsFile().includes(LEGACY_PASSWORD), 'the plain password to leave the file');
    const stored = JSON.parse(credentialsFile()) as Record<string, { passwords?: string; password?: string }>;
    assert.match(JSON.parse(stored[BROKER].passwords!).bob, /^scrypt\$/);
    assert.equal(stored[BROKER].password, undefined);
    const again = await connectWhenListening(port, { username: 'bob', password: LEGACY_PASSWORD });
    await again.endAsync();
  });
});
