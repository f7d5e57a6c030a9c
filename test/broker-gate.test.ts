import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { Identity } from '../nodes/lib/broker/acl.js';
import { MAX_QOS2_AWAITING_RELEASE } from '../nodes/lib/broker/limits.js';
import { PacketGate, type GateOptions } from '../nodes/lib/broker/packet-gate.js';
import { connect, packet, publish, subscribe, uint16 } from './support/raw-mqtt.js';

interface Recorded {
  forwarded: Buffer[];
  answers: Buffer[];
  refused: string[];
  violations: string[];
}

function gate(options: Partial<GateOptions> = {}): { gate: PacketGate; recorded: Recorded } {
  const recorded: Recorded = { forwarded: [], answers: [], refused: [], violations: [] };
  const packetGate = new PacketGate(
    { maxPacketSize: 1024, access: undefined, conformance: true, ...options },
    {
      forward: (bytes) => recorded.forwarded.push(Buffer.from(bytes)),
      answer: (bytes) => recorded.answers.push(bytes),
      publishRefused: (_identity, topic) => recorded.refused.push(topic),
      violation: (reason) => recorded.violations.push(reason),
      anonymousRefused: () => recorded.violations.push('anonymous client from the network'),
    },
  );
  return { gate: packetGate, recorded };
}

/** Feeds `bytes` in chunks of the given sizes, cycling through them. */
function feed(target: PacketGate, bytes: Buffer, sizes: number[]) {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length];
    target.accept(bytes.subarray(offset, offset + size));
    offset += size;
  }
}

const onlyAllowed = {
  mayPublish: (_identity: Identity, topic: string) => topic.startsWith('allowed/'),
  publishesFreely: () => false,
};

describe('packet gate', () => {
  const stream = Buffer.concat([
    connect({ clientId: 'c1' }),
    publish('allowed/a', { qos: 1, packetId: 1, payload: Buffer.alloc(300, 1) }),
    subscribe(2, [['x/#', 1]]),
    publish('allowed/b', { payload: Buffer.alloc(700, 2) }),
    packet(0x40, uint16(9)),
    packet(0xc0),
  ]);

  for (const sizes of [[1], [3, 7], [64], [1000], [stream.length]]) {
    it(`forwards a stream unchanged whatever its segments (${sizes.join(', ')} bytes at a time)`, () => {
      const { gate: target, recorded } = gate();
      feed(target, stream, sizes);
      assert.deepEqual(recorded.violations, []);
      assert.deepEqual(Buffer.concat(recorded.forwarded), stream);
    });
  }

  it('cuts out a refused publication, acknowledges it, and forwards the rest byte for byte', () => {
    const refused = publish('denied/x', { qos: 1, packetId: 5, payload: Buffer.alloc(200) });
    const before = Buffer.concat([
      connect({ clientId: 'c1' }),
      publish('allowed/1', { qos: 1, packetId: 4 }),
    ]);
    const after = Buffer.concat([publish('allowed/2', { qos: 2, packetId: 6 }), packet(0xc0)]);
    for (const sizes of [[1], [5, 11], [4096]]) {
      const { gate: target, recorded } = gate({ access: onlyAllowed });
      feed(target, Buffer.concat([before, refused, after]), sizes);
      assert.deepEqual(Buffer.concat(recorded.forwarded), Buffer.concat([before, after]));
      assert.deepEqual(recorded.answers, [Buffer.from([0x40, 0x02, 0x00, 0x05])]);
      assert.deepEqual(recorded.refused, ['denied/x']);
    }
  });

  it('answers PUBREC to a refused QoS 2 publication and nothing to a refused QoS 0 one', () => {
    const { gate: target, recorded } = gate({ access: onlyAllowed });
    target.accept(
      Buffer.concat([
        connect({ clientId: 'c1' }),
        publish('denied/2', { qos: 2, packetId: 300 }),
        publish('denied/0'),
      ]),
    );
    assert.deepEqual(recorded.answers, [Buffer.from([0x50, 0x02, 0x01, 0x2c])]);
    assert.deepEqual(recorded.refused, ['denied/2', 'denied/0']);
  });

  it('closes a client with more than MAX_QOS2_AWAITING_RELEASE QoS 2 publications awaiting PUBREL, counting each identifier once', () => {
    const { gate: target, recorded } = gate();
    target.accept(connect({ clientId: 'c1' }));
    const qos2 = (packetId: number) => publish('t', { qos: 2, packetId });
    for (let id = 1; id <= MAX_QOS2_AWAITING_RELEASE; id++) target.accept(qos2(id));
    // A resent one and a released one leave room for exactly one more.
    target.accept(Buffer.concat([qos2(1), packet(0x62, uint16(2)), qos2(MAX_QOS2_AWAITING_RELEASE + 1)]));
    assert.deepEqual(recorded.violations, []);
    target.accept(qos2(MAX_QOS2_AWAITING_RELEASE + 2));
    assert.deepEqual(recorded.violations, [
      `more than ${MAX_QOS2_AWAITING_RELEASE} QoS 2 publications awaiting PUBREL`,
    ]);
  });

  it('refuses a packet over maxPacketSize from its length alone, before its body arrives', () => {
    const { gate: target, recorded } = gate({ maxPacketSize: 100 });
    target.accept(connect({ clientId: 'c1' }));
    // A PUBLISH announcing 16,383 bytes: only its fixed header is sent.
    target.accept(Buffer.from([0x30, 0xff, 0x7f]));
    assert.equal(recorded.violations.length, 1);
    assert.match(recorded.violations[0], /larger than 100 bytes/);
    target.accept(Buffer.alloc(50));
    assert.equal(recorded.forwarded.length, 1, 'only the CONNECT went on');
  });

  it('passes every byte straight through, unchecked, once there is nothing to check (in-process, no restriction)', () => {
    const { gate: target, recorded } = gate({ maxPacketSize: Number.POSITIVE_INFINITY, conformance: false });
    const start = Buffer.concat([connect({ clientId: 'c1' }), publish('a').subarray(0, 3)]);
    target.accept(start);
    const rest = Buffer.concat([publish('a').subarray(3), Buffer.from([0xff, 0xff])]);
    target.accept(rest);
    assert.deepEqual(Buffer.concat(recorded.forwarded), Buffer.concat([start, rest]));
  });

  describe('MQTT 5 packets, whose properties sit between the fields', () => {
    const v5 = (...packets: Packet[]) =>
      Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: 5 })));
    const userProperties = { 'first-key': 'v', second: ['a', 'b'] };
    const session = v5(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clientId: '',
        clean: true,
        keepalive: 30,
        properties: { sessionExpiryInterval: 60, receiveMaximum: 10, userProperties },
        will: {
          topic: 'allowed/will',
          payload: Buffer.from('gone'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 5, contentType: 'text/plain' },
        },
        username: 'u',
        password: Buffer.from('p'),
      },
      {
        cmd: 'publish',
        topic: 'allowed/a',
        payload: Buffer.from('x'),
        qos: 1,
        messageId: 1,
        dup: false,
        retain: false,
        properties: { responseTopic: 'allowed/reply', correlationData: Buffer.from([1, 2]), userProperties },
      },
      {
        cmd: 'subscribe',
        messageId: 2,
        properties: { subscriptionIdentifier: 7 },
        subscriptions: [{ topic: 'x/#', qos: 1, nl: true, rap: true, rh: 2 }],
      },
      { cmd: 'unsubscribe', messageId: 3, unsubscriptions: ['x/#'], properties: { userProperties } },
      { cmd: 'puback', messageId: 9, reasonCode: 0x10, properties: { reasonString: 'no subscribers' } },
      { cmd: 'pubrec', messageId: 10, reasonCode: 0 },
      { cmd: 'pingreq' },
      { cmd: 'disconnect', reasonCode: 0x04, properties: { sessionExpiryInterval: 0 } },
    );

    it('[MQTT-3.1.2-2] forwards a valid MQTT 5 session unchanged, properties and reason codes included', () => {
      for (const sizes of [[1], [7], [session.length]]) {
        const { gate: target, recorded } = gate({ access: onlyAllowed });
        feed(target, session, sizes);
        assert.deepEqual(recorded.violations, []);
        assert.deepEqual(Buffer.concat(recorded.forwarded), session);
      }
    });

    /** A plain MQTT 5 CONNECT of client `c5`, with `properties`. */
    const connect5 = (properties?: { requestProblemInformation: boolean }): Packet => ({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 5,
      clientId: 'c5',
      clean: true,
      keepalive: 0,
      properties,
    });

    /** A CONNECT (with `properties`), then a QoS 1 and a QoS 2 publication the topic rules refuse. */
    function refusedPublications(properties?: { requestProblemInformation: boolean }): Buffer {
      return v5(
        connect5(properties),
        {
          cmd: 'publish',
          topic: 'denied/1',
          payload: Buffer.alloc(0),
          qos: 1,
          messageId: 0x0102,
          dup: false,
          retain: false,
          properties: { userProperties },
        },
        {
          cmd: 'publish',
          topic: 'denied/2',
          payload: Buffer.alloc(0),
          qos: 2,
          messageId: 3,
          dup: false,
          retain: false,
        },
      );
    }

    it('[MQTT-3.4.2-1] answers a refused MQTT 5 publication with the reason code Not authorized (0x87) and a Reason String', () => {
      const { gate: target, recorded } = gate({ access: onlyAllowed });
      target.accept(refusedPublications());
      const properties = { reasonString: 'not authorized to publish to this topic' };
      assert.deepEqual(recorded.answers, [
        v5({ cmd: 'puback', messageId: 0x0102, reasonCode: 0x87, properties }),
        v5({ cmd: 'pubrec', messageId: 3, reasonCode: 0x87, properties }),
      ]);
      assert.deepEqual(recorded.refused, ['denied/1', 'denied/2']);
    });

    it('[MQTT-3.1.2-29] answers the refusal without a Reason String to a client asking for no problem information', () => {
      const { gate: target, recorded } = gate({ access: onlyAllowed });
      target.accept(refusedPublications({ requestProblemInformation: false }));
      assert.deepEqual(recorded.answers, [
        Buffer.from([0x40, 0x03, 0x01, 0x02, 0x87]),
        Buffer.from([0x50, 0x03, 0x00, 0x03, 0x87]),
      ]);
    });

    it('[MQTT-1.5.5-1] closes on MQTT 5 properties whose length runs past the packet', () => {
      const { gate: target, recorded } = gate();
      const connectPacket = v5(connect5());
      // A QoS 1 PUBLISH "t", packet identifier 1, then a property length of 100 with nothing after it.
      target.accept(
        Buffer.concat([connectPacket, Buffer.from([0x32, 0x06, 0x00, 0x01, 0x74, 0x00, 0x01, 0x64])]),
      );
      assert.deepEqual(recorded.violations, ['malformed PUBLISH']);
    });
  });
});
