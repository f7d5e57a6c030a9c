import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'mocha';
import { probeConnection } from '../nodes/lib/connection/probe.js';
import { allNodes, helper, type AdminResponse } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';
import { brokerConfigNode, embeddedBrokerNode, mqttInNode } from './support/flows.js';

const BROKER = 'b0000000000000101';
const CONFIG = 'c0000000000000101';
const ENDPOINT = '/durable-mqtt-broker-config/test-connection';

const broker = embeddedBrokerNode(0, { id: BROKER });
const config = brokerConfigNode({
  id: CONFIG,
  embedded: BROKER,
  clientId: 'the-running-connection',
  cleanSession: false,
});
const BROKER_LOGIN = { user: 'operator', password: 'right horse battery' };

/** What the edit dialog posts: its current values, as strings. */
function dialog(values: Record<string, string>): Record<string, string> {
  return { transport: 'embedded', embedded: BROKER, protocolVersion: '4', keepalive: '60', ...values };
}

function test(values: Record<string, string>): Promise<AdminResponse> {
  return helper.request().post(ENDPOINT).send(dialog(values));
}

describe("the broker config dialog's test connection", () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('answers "connected" for an embedded broker chosen in a dialog that is not saved yet', async () => {
    await helper.load(allNodes, [broker]);
    const answer = await test({});
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { outcome: 'connected' });
  });

  it("reports the broker's refusal of a wrong password with the catalog key of its reason", async () => {
    await helper.load(allNodes, [broker], { [BROKER]: BROKER_LOGIN });
    const answer = await test({ user: BROKER_LOGIN.user, password: 'wrong' });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.outcome, 'failed');
    assert.deepEqual(
      { ...(answer.body.reason as object), message: undefined },
      { code: 'refused', returnCode: 4, message: undefined },
    );
    assert.equal(answer.body.reasonKey, 'connack.4');
  });

  it('uses the saved password when the dialog sends it masked, and leaves the running connection connected', async () => {
    await helper.load(
      allNodes,
      [broker, config, mqttInNode({ id: 'in1', broker: CONFIG, topic: 'a/#', wires: [] })],
      {
        [BROKER]: BROKER_LOGIN,
        [CONFIG]: BROKER_LOGIN,
      },
    );
    const running = (helper.getNode(CONFIG) as unknown as { connection: { connected: boolean } }).connection;
    await waitFor(() => running.connected, 'the deployed config to connect');
    let disconnects = 0;
    (running as unknown as NodeJS.EventEmitter).on('status', (status: { state: string }) => {
      if (status.state !== 'connected') disconnects++;
    });

    const masked = await test({ id: CONFIG, user: BROKER_LOGIN.user, password: '__PWRD__' });
    assert.deepEqual(masked.body, { outcome: 'connected' });
    // Same masked value for a config that has no saved password: no password is sent, the broker refuses.
    const unsaved = await test({ id: 'c0000000000000999', user: BROKER_LOGIN.user, password: '__PWRD__' });
    assert.equal((unsaved.body.reason as { returnCode?: number }).returnCode, 4);
    assert.equal(running.connected, true);
    assert.equal(disconnects, 0, 'the test did not take over the running session');
  });

  it('reports the network error when nothing listens on the host and port', async () => {
    await helper.load(allNodes, []);
    const port = await freePort();
    const answer = await test({ transport: 'mqtt', host: '127.0.0.1', port: String(port) });
    assert.equal(answer.body.outcome, 'failed');
    const reason = answer.body.reason as { code: string; message: string };
    assert.equal(reason.code, 'network');
    assert.match(reason.message, /ECONNREFUSED/);
  });

  it('reports an embedded broker node that is not running', async () => {
    await helper.load(allNodes, []);
    const answer = await test({ embedded: 'b0000000000000999' });
    assert.equal(answer.body.outcome, 'failed');
    assert.equal((answer.body.reason as { code: string }).code, 'embedded-missing');
  });

  it('asks for the TLS configuration to be deployed when the dialog names one the runtime does not have', async () => {
    await helper.load(allNodes, []);
    const answer = await test({
      transport: 'mqtts',
      host: '127.0.0.1',
      port: '8883',
      tls: 'f0000000000000999',
    });
    assert.deepEqual(answer.body, { outcome: 'tls-not-deployed' });
  });

  it('refuses a request without an embedded broker to test', async () => {
    await helper.load(allNodes, []);
    const answer = await test({ embedded: '' });
    assert.equal(answer.status, 400);
  });
});

describe('probeConnection', () => {
  it('ends with "timeout" when a server accepts the TCP connection but never answers CONNECT', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const started = Date.now();
      const result = await probeConnection(
        {
          endpoint: { transport: 'mqtt', host: '127.0.0.1', port },
          clientId: 'durable-mqtt-timeout',
          protocolVersion: 4,
          keepalive: 60,
          cleanSession: true,
        },
        500,
      );
      assert.deepEqual(result, { outcome: 'timeout' });
      assert.ok(Date.now() - started < 3000, 'gave up at the deadline');
    } finally {
      silent.close();
    }
  });
});
