import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt from 'mqtt';
import { makeCertificates, type TestCertificates } from './support/certificates.js';
import { connectWhenListening } from './support/embedded-broker.js';
import { EMBEDDED_BROKER_ID, embeddedBrokerNode } from './support/flows.js';
import { allNodes, helper, translate, type RuntimeNode, watchStatus } from './support/node-red.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';

const require = createRequire(__filename);
const tlsConfigNode = require('@node-red/nodes/core/network/05-tls.js');

function tlsConfig(files: { cert?: string; key?: string; ca?: string }) {
  return {
    id: 'tls1',
    type: 'tls-config',
    cert: files.cert ?? '',
    key: files.key ?? '',
    ca: files.ca ?? '',
    verifyservercert: true,
    servername: '',
  };
}

/** A message there and back through the broker on one client. */
async function roundTrip(client: mqtt.MqttClient, topic: string): Promise<void> {
  const received = new Promise<string>((resolve) =>
    client.once('message', (_topic, payload) => resolve(`${payload}`)),
  );
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, 'secure', { qos: 1 });
  assert.equal(await received, 'secure');
}

describe('embedded broker over TLS and secure WebSocket', () => {
  let certificates: TestCertificates;

  before(async () => {
    certificates = makeCertificates();
    await helper.startServer();
  });
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('serves MQTT over TLS and secure WebSocket with the certificate of a tls-config node, and plain TCP beside them', async () => {
    const [port, tlsPort, wssPort] = [await freePort(), await freePort(), await freePort()];
    await helper.load(
      [...allNodes, tlsConfigNode],
      [
        tlsConfig({ cert: certificates.certFile, key: certificates.keyFile }),
        embeddedBrokerNode(port, { tls: 'tls1', tlsPort, wssPort }),
      ],
    );
    const node = helper.getNode(EMBEDDED_BROKER_ID) as RuntimeNode;
    const statuses = watchStatus(node);
    const ca = readFileSync(certificates.caFile);
    const overTls = await connectWhenListening(`mqtts://localhost:${tlsPort}`, { ca });
    await roundTrip(overTls, 'tls/t');
    const overWss = await connectWhenListening(`wss://localhost:${wssPort}/mqtt`, { ca });
    await roundTrip(overWss, 'wss/t');
    const plain = await connectWhenListening(port);
    await roundTrip(plain, 'plain/t');
    await Promise.all([overTls.endAsync(), overWss.endAsync(), plain.endAsync()]);
    await waitFor(() => statuses.length > 0, 'a status');
    assert.match(statuses.at(-1)!.text!, new RegExp(`:${port} · TLS :${tlsPort} · WSS :${wssPort}`));
  });

  it('takes MQTT 3.1, 3.1.1 and 5 clients on TCP, TLS, WebSocket and secure WebSocket alike', async () => {
    const [port, tlsPort, wssPort] = [await freePort(), await freePort(), await freePort()];
    await helper.load(
      [...allNodes, tlsConfigNode],
      [
        tlsConfig({ cert: certificates.certFile, key: certificates.keyFile }),
        embeddedBrokerNode(port, { tls: 'tls1', tlsPort, wssPort, wsPath: '/mqtt-ws' }),
      ],
    );
    const ca = readFileSync(certificates.caFile);
    const nodeRed = new URL((helper as unknown as { url(): string }).url());
    const transports: [string, string | number][] = [
      ['TCP', port],
      ['TLS', `mqtts://localhost:${tlsPort}`],
      ['WebSocket', `ws://${nodeRed.host}/mqtt-ws`],
      ['secure WebSocket', `wss://localhost:${wssPort}/mqtt`],
    ];
    const versions: [string, mqtt.IClientOptions][] = [
      ['MQTT 3.1', { protocolVersion: 3, protocolId: 'MQIsdp' }],
      ['MQTT 3.1.1', { protocolVersion: 4 }],
      ['MQTT 5', { protocolVersion: 5 }],
    ];
    const served: string[] = [];
    for (const [transport, address] of transports)
      for (const [version, options] of versions) {
        const client = await connectWhenListening(address, { ca, ...options });
        try {
          await roundTrip(client, `versions/${transport}/${version}`);
          served.push(`${version} over ${transport}`);
        } finally {
          await client.endAsync();
        }
      }
    assert.equal(served.length, transports.length * versions.length, served.join(', '));
  });

  it('is refused by a client that verifies certificates and does not trust its CA', async () => {
    const tlsPort = await freePort();
    await helper.load(
      [...allNodes, tlsConfigNode],
      [
        tlsConfig({ cert: certificates.certFile, key: certificates.keyFile }),
        embeddedBrokerNode(0, { tls: 'tls1', tlsPort }),
      ],
    );
    const ca = readFileSync(certificates.caFile);
    await (await connectWhenListening(`mqtts://localhost:${tlsPort}`, { ca })).endAsync();
    await assert.rejects(
      mqtt.connectAsync(`mqtts://localhost:${tlsPort}`, { reconnectPeriod: 0, protocolVersion: 4 }),
      /self[- ]signed|unable to (get|verify)|certificate/i,
    );
  });

  it('requires a client certificate signed by the CA of the tls-config node, when it has one', async () => {
    const tlsPort = await freePort();
    await helper.load(
      [...allNodes, tlsConfigNode],
      [
        tlsConfig({ cert: certificates.certFile, key: certificates.keyFile, ca: certificates.caFile }),
        embeddedBrokerNode(0, { tls: 'tls1', tlsPort }),
      ],
    );
    const ca = readFileSync(certificates.caFile);
    // The test CA signed one certificate: the server's, used here as the client's too.
    const withCertificate = await connectWhenListening(`mqtts://localhost:${tlsPort}`, {
      ca,
      cert: readFileSync(certificates.certFile),
      key: readFileSync(certificates.keyFile),
    });
    await roundTrip(withCertificate, 'mutual/t');
    await withCertificate.endAsync();
    await assert.rejects(
      mqtt.connectAsync(`mqtts://localhost:${tlsPort}`, { ca, reconnectPeriod: 0, connectTimeout: 3000 }),
    );
  });

  it('reports a tls-config node without certificate and key, and keeps serving plain TCP', async () => {
    const [port, tlsPort] = [await freePort(), await freePort()];
    const errors: string[] = [];
    await helper.load(
      [...allNodes, tlsConfigNode],
      [tlsConfig({ ca: certificates.caFile }), embeddedBrokerNode(port, { tls: 'tls1', tlsPort })],
    );
    const node = helper.getNode(EMBEDDED_BROKER_ID) as RuntimeNode;
    // The error came while the node was being created: it is in the spy's history.
    const history = (node as unknown as { error: { args: unknown[][] } }).error.args;
    errors.push(...history.map((args) => String(args[0])));
    assert.deepEqual(errors, [translate('durable-mqtt.errors.tls-no-certificate')]);
    await (await connectWhenListening(port)).endAsync();
    await assert.rejects(
      mqtt.connectAsync(`mqtts://localhost:${tlsPort}`, { reconnectPeriod: 0, connectTimeout: 1000 }),
      /ECONNREFUSED/,
    );
  });
});
