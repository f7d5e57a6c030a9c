import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'mocha';
import { createDuplexPair } from '../nodes/lib/duplex-pair.js';
import { DEFAULT_BACKOFF, nextReconnectDelay } from '../nodes/lib/connection/backoff.js';

describe('in-process transport', () => {
  it('carries bytes both ways and ends the peer', async () => {
    const [a, b] = createDuplexPair();
    const fromA: Buffer[] = [];
    b.on('data', (chunk: Buffer) => fromA.push(chunk));
    a.write('hello ');
    a.end('world');
    await once(b, 'end');
    assert.equal(Buffer.concat(fromA).toString(), 'hello world');
    const reply = once(a, 'data');
    b.write('ack');
    assert.equal(((await reply)[0] as Buffer).toString(), 'ack');
  });

  it('holds the writer back while the reader does not read (backpressure)', async () => {
    const [a, b] = createDuplexPair();
    let accepted = 0;
    const chunk = Buffer.alloc(64 * 1024);
    while (a.write(chunk) && accepted < 1000) accepted++;
    assert.ok(accepted < 1000, 'write() returned false before 64 MB were buffered');
    b.resume();
    await once(a, 'drain');
  });

  it('destroys the peer when one end is destroyed', async () => {
    const [a, b] = createDuplexPair();
    a.destroy();
    await once(b, 'close');
    assert.equal(b.destroyed, true);
  });
});

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the maximum, with half of each delay random', () => {
    const low = (attempt: number) => nextReconnectDelay(attempt, {}, () => 0);
    const high = (attempt: number) => nextReconnectDelay(attempt, {}, () => 1);
    assert.deepEqual([0, 1, 2, 3].map(high), [1000, 2000, 4000, 8000]);
    assert.deepEqual([0, 1, 2, 3].map(low), [500, 1000, 2000, 4000]);
    assert.equal(high(50), DEFAULT_BACKOFF.maxDelay);
    assert.equal(low(50), DEFAULT_BACKOFF.maxDelay / 2);
    assert.equal(
      nextReconnectDelay(2, { initialDelay: 100, maxDelay: 250 }, () => 1),
      250,
    );
  });
});
