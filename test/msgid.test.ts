import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { nextMsgId } from '../nodes/node-red/msgid.js';

describe('Node-RED msg ids (_msgid) of the in nodes', () => {
  it('gives 16 hex digits, as Node-RED does, and never the same id twice across the table boundaries', () => {
    const ids = Array.from({ length: 70_000 }, () => nextMsgId());
    for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(new Set(ids).size, ids.length);
    // A counter under one prefix: consecutive ids count up by one, across 256 and 65,536 too.
    const counts = ids.map((id) => parseInt(id.slice(8), 16));
    for (let i = 1; i < counts.length; i++) assert.equal(counts[i], counts[i - 1] + 1, ids[i]);
    assert.equal(new Set(ids.map((id) => id.slice(0, 8))).size, 1);
  });
});
