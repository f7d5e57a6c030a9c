import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { Identity } from '../nodes/lib/broker/acl.js';
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
});
