import assert from 'node:assert/strict';
import { delay } from './support/wait.js';
import { after, describe, it } from 'mocha';
import { NodeRedRig } from './support/crash-rig.js';
import { dedupeNode } from './support/flows.js';

/**
 * POST /seen {seq} → dedupe (key payload.seq, persist). The HTTP answer comes from a
 * Complete node on the dedupe node, so it is sent once the node called done(): for a
 * first copy, once its key is on disk. The body says which output the message took.
 */
const flow = [
  { id: 'tab1', type: 'tab', label: 'dedupe crash test' },
  { id: 'http1', type: 'http in', z: 'tab1', url: '/seen', method: 'post', wires: [['dedupe1']] },
  dedupeNode({ id: 'dedupe1', z: 'tab1', key: 'property', property: 'payload.seq', persist: true }),
  {
    id: 'complete1',
    type: 'complete',
    z: 'tab1',
    scope: ['dedupe1'],
    uncaught: false,
    wires: [['verdict1']],
  },
  {
    id: 'verdict1',
    type: 'function',
    z: 'tab1',
    func: "msg.payload = msg.duplicateOf ? 'duplicate ' + msg.duplicateOf.count : 'first';\nreturn msg;",
    outputs: 1,
    wires: [['reply1']],
  },
  { id: 'reply1', type: 'http response', z: 'tab1', statusCode: '', headers: {}, wires: [] },
];

describe('durable dedupe node across a crash', () => {
  const rig = new NodeRedRig(flow);
  after(async () => {
    await rig.stop().catch(() => rig.process?.kill());
  });

  async function post(seq: number): Promise<string> {
    const send = () =>
      fetch(`${rig.url}/seen`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seq }),
        signal: AbortSignal.timeout(10_000),
      });
    let response = await send();
    // The admin API answers before the flows run, and the flow's endpoint exists only once they do:
    // on a busy machine the first request after a start can come in between.
    for (const deadline = Date.now() + 30_000; response.status === 404 && Date.now() < deadline;) {
      await delay(200);
      response = await send();
    }
    assert.equal(response.status, 200);
    return response.text();
  }

  it('catches a duplicate delivered after Node-RED was SIGKILLed and restarted (persisted seen-set)', async () => {
    await rig.start();
    assert.equal(await post(42), 'first', 'the first copy');
    assert.equal(await post(42), 'duplicate 2', 'a copy before the crash');
    // The first copy was answered, so its key is on disk: a SIGKILL now, as a power cut of the process.
    await rig.crash();
    await rig.start();
    // The count of the copy before the crash is written without being waited for: 2 or 3.
    assert.match(await post(42), /^duplicate [23]$/, 'a copy delivered again after the restart');
    assert.equal(await post(43), 'first', 'a new message after the restart');
    assert.deepEqual(rig.process?.logLines('error'), []);
  });
});
