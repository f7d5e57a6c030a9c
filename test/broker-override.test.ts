import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { ConnectionOptions, TlsOptions } from '../nodes/lib/connection/types.js';
import { BrokerOverrideError, applyBrokerOverride } from '../nodes/node-red/broker-override.js';

// msg.broker with a connect action: the core mqtt nodes' key names, checked before anything changes.
const network: ConnectionOptions = {
  endpoint: { transport: 'mqtt', host: 'old.example', port: 1883 },
  clientId: 'before',
  protocolVersion: 4,
  keepalive: 60,
  cleanSession: true,
};
const embedded: ConnectionOptions = { ...network, endpoint: { transport: 'embedded', brokerId: 'b1' } };
const tls: TlsOptions = { rejectUnauthorized: true, servername: 'from-the-tls-node' };
const tlsOf = (transport: string) => (transport === 'mqtts' || transport === 'wss' ? tls : undefined);

function refusal(current: ConnectionOptions, value: unknown): { key: string; problem: string } {
  try {
    applyBrokerOverride(current, value, tlsOf);
  } catch (error) {
    assert.ok(error instanceof BrokerOverrideError);
    return { key: error.key, problem: error.problem };
  }
  assert.fail('accepted');
}

describe('msg.broker applied to a connection’s settings', () => {
  it('takes a URL with its credentials, and TLS settings for a secure one', () => {
    const { options, keys, force } = applyBrokerOverride(
      network,
      { url: 'mqtts://user%40site:p%3Ass@new.example:8884' },
      tlsOf,
    );
    assert.deepEqual(options.endpoint, { transport: 'mqtts', host: 'new.example', port: 8884 });
    assert.equal(options.username, 'user@site');
    assert.equal(options.password, 'p:ss');
    assert.equal(options.tls, tls);
    assert.deepEqual(keys, ['url']);
    assert.equal(force, false);
    assert.equal(network.endpoint.transport, 'mqtt', 'the settings in force are left alone');
  });

  it('takes a WebSocket URL with its path, and a host, port and usetls as the core node names them', () => {
    const ws = applyBrokerOverride(network, { broker: 'ws://h.example/mqtt-ws' }, tlsOf).options;
    assert.deepEqual(ws.endpoint, { transport: 'ws', host: 'h.example', port: 80, path: '/mqtt-ws' });
    const secured = applyBrokerOverride(network, { broker: 'h2.example', port: '8883', usetls: true }, tlsOf);
    assert.deepEqual(secured.options.endpoint, { transport: 'mqtts', host: 'h2.example', port: 8883 });
    assert.equal(secured.options.tls, tls);
  });

  it('changes the session and the lifecycle messages, and MQTT 3.1 through compatmode', () => {
    const { options, force } = applyBrokerOverride(
      network,
      {
        clientid: 'after',
        cleansession: 'false',
        keepalive: 30,
        compatmode: true,
        birth: { topic: 'status/up', payload: { up: true }, qos: '1', retain: 'true' },
        will: {},
        force: true,
      },
      tlsOf,
    );
    assert.equal(options.clientId, 'after');
    assert.equal(options.cleanSession, false);
    assert.equal(options.keepalive, 30);
    assert.equal(options.protocolVersion, 3);
    assert.deepEqual(options.birth, { topic: 'status/up', payload: '{"up":true}', qos: 1, retain: true });
    assert.equal(options.will, undefined, 'a message without a topic: none');
    assert.equal(force, true);
  });

  it('refuses an unknown key, a bad value, and what means nothing to an embedded broker', () => {
    assert.deepEqual(refusal(network, 'mqtt://x'), { key: '', problem: 'not-an-object' });
    assert.deepEqual(refusal(network, { verifyservercert: true }), {
      key: 'verifyservercert',
      problem: 'unknown',
    });
    assert.deepEqual(refusal(network, { port: 70_000 }), { key: 'port', problem: 'invalid' });
    assert.deepEqual(refusal(network, { url: 'http://x' }), { key: 'url', problem: 'invalid' });
    assert.deepEqual(refusal(network, { birth: { topic: 'a/#' } }), { key: 'birth', problem: 'invalid' });
    assert.deepEqual(refusal(network, { protocolVersion: 6 }), {
      key: 'protocolVersion',
      problem: 'invalid',
    });
    assert.deepEqual(refusal(embedded, { port: 1884 }), { key: 'port', problem: 'embedded' });
    assert.deepEqual(refusal(embedded, { protocolVersion: 5 }), {
      key: 'protocolVersion',
      problem: 'embedded',
    });
  });

  it('moves an embedded config to a network broker given a URL', () => {
    const { options } = applyBrokerOverride(embedded, { url: 'mqtt://10.0.0.2' }, tlsOf);
    assert.deepEqual(options.endpoint, { transport: 'mqtt', host: '10.0.0.2', port: 1883 });
  });
});
