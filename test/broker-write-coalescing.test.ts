import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'mocha';
import { GatedConnection } from '../nodes/lib/broker/gated-connection.js';

/** A client's transport that records each write it gets: a writev's chunks together, a write alone. */
class RecordingTransport extends Duplex {
  readonly writes: string[][] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.writes.push([chunk.toString()]);
    callback();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: () => void): void {
    this.writes.push(chunks.map(({ chunk }) => chunk.toString()));
    callback();
  }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function connection(coalesceWrites: boolean) {
  const transport = new RecordingTransport();
  const gated = new GatedConnection(transport, {
    maxPacketSize: 1024,
    access: undefined,
    conformance: coalesceWrites,
    coalesceWrites,
  });
  return { transport, gated };
}

describe('embedded broker: writes to a network client', () => {
  it('sends the packets written in one turn of the event loop in one write of one buffer, once the CONNACK is out', async () => {
    const { transport, gated } = connection(true);
    gated.write('connack');
    gated.connectionAccepted();
    await nextTurn();
    gated.write('publish 1');
    gated.write('publish 2');
    gated.write('publish 3');
    assert.deepEqual(transport.writes, [['connack']], 'held until the turn ends');
    await nextTurn();
    assert.deepEqual(transport.writes, [['connack'], ['publish 1publish 2publish 3']]);
    gated.write('publish 4');
    await nextTurn();
    assert.deepEqual(transport.writes.at(-1), ['publish 4']);
  });

  it("holds nothing in the CONNACK's own turn: what follows it there leaves on its own", () => {
    const { transport, gated } = connection(true);
    gated.write('connack');
    gated.connectionAccepted();
    gated.write('queued publish');
    assert.deepEqual(transport.writes, [['connack'], ['queued publish']]);
  });

  it('sends what was written before a destroy (a DISCONNECT with its reason), then closes', async () => {
    const { transport, gated } = connection(true);
    gated.connectionAccepted();
    await nextTurn();
    gated.write('disconnect');
    gated.destroy();
    assert.deepEqual(transport.writes, [['disconnect']]);
    assert.equal(transport.destroyed, true);
  });

  it('writes each packet at once for the broker configs of this Node-RED (in-process clients)', async () => {
    const { transport, gated } = connection(false);
    gated.connectionAccepted();
    await nextTurn();
    gated.write('publish 1');
    gated.write('publish 2');
    assert.deepEqual(transport.writes, [['publish 1'], ['publish 2']]);
  });
});
