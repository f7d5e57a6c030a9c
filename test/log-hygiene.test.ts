/**
 * What a real Node-RED prints, at debug level with the audit log on, while
 * clients give wrong passwords, publish where they may not, and send payloads
 * a node cannot parse: the refusals are logged, the secrets never.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { hashPassword } from '../nodes/lib/broker/passwords.js';
import { NodeRedRig } from './support/crash-rig.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { brokerConfigNode, embeddedBrokerNode, mqttInNode } from './support/flows.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

const BROKER = 'b00000000000hyg1';
const PASSWORD = 'Correct-Horse-71d5';
const WRONG_PASSWORD = 'Wrong-Battery-3e0a';
const CONFIG_WRONG_PASSWORD = 'Staple-Wrong-9b2c';
// V8 quotes the first ten characters of a text JSON.parse refuses: the distinctive word comes first.
const PRIVATE_PAYLOAD = 'Xyzzy-7 medical reading 42';
const SECRETS = [PASSWORD, WRONG_PASSWORD, CONFIG_WRONG_PASSWORD, PRIVATE_PAYLOAD, 'Xyzzy'];

describe('what the logs hold', () => {
  let rig: NodeRedRig;
  let port: number;

  before(async () => {
    port = await freePort();
    // Not the node's id: Node-RED would read a property holding a config node's id as a reference.
    const clientId = (id: string) => `${id}-client`;
    rig = new NodeRedRig([
      { id: 'tab1', type: 'tab', label: 'hygiene' },
      embeddedBrokerNode(port, {
        id: BROKER,
        z: 'tab1',
        accounts: [{ username: 'alice', publish: ['public/#'], subscribe: ['#'] }],
        allowAnonymous: false,
      }),
      brokerConfigNode({ id: 'right-cfg', port, clientId: clientId('right-cfg') }),
      brokerConfigNode({ id: 'wrong-cfg', embedded: BROKER, clientId: clientId('wrong-cfg') }),
      mqttInNode({ id: 'json-in', z: 'tab1', broker: 'right-cfg', topic: 'public/#', datatype: 'json' }),
      mqttInNode({ id: 'wrong-in', z: 'tab1', broker: 'wrong-cfg', topic: 'x', qos: 0, datatype: 'utf8' }),
    ]);
    writeFileSync(
      path.join(rig.userDir, 'flows_cred.json'),
      JSON.stringify({
        [BROKER]: { passwords: JSON.stringify({ alice: await hashPassword(PASSWORD) }) },
        'right-cfg': { user: 'alice', password: PASSWORD },
        'wrong-cfg': { user: 'alice', password: CONFIG_WRONG_PASSWORD },
      }),
    );
    writeFileSync(
      path.join(rig.userDir, 'settings.js'),
      `module.exports = { uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
        logging: { console: { level: 'debug', metrics: false, audit: true } } };\n`,
    );
    await rig.start();
  });
  after(async () => {
    await rig.stop();
  });

  it('names refused logins, refused publications and unparsable payloads, and never holds a password or a payload', async () => {
    const output = () => rig.process!.output;
    // The json in node's connection retries until the broker listens: its subscription must be in first.
    await waitFor(
      () => output().includes('[durable-mqtt-broker-config:right-cfg] Connected'),
      'the in node',
      20_000,
    );
    await delay(300);
    const alice = await connectWhenListening(port, {
      username: 'alice',
      password: PASSWORD,
      clientId: 'alice-1',
    });
    await alice.publishAsync('private/records', PRIVATE_PAYLOAD, { qos: 1 });
    await alice.publishAsync('public/records', PRIVATE_PAYLOAD, { qos: 1 });
    await assert.rejects(
      mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        protocolVersion: 4,
        reconnectPeriod: 0,
        username: 'alice',
        password: WRONG_PASSWORD,
      }),
      { code: 4 },
    );
    await alice.endAsync();
    await waitFor(
      () =>
        output().includes('may not publish to "private/records"') &&
        output().includes('The payload received on "public/records" is not valid JSON') &&
        output().includes('bad user name or password'),
      'the refusals and the parse error in the log',
      20_000,
    );
    await rig.stop();
    for (const secret of SECRETS) assert.ok(!output().includes(secret), `the log holds "${secret}"`);
  });
});
