import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { parseStoredMessage, storableMessage } from '../nodes/node-red/stored-message.js';
import { newMessageId, wrapEnvelope } from '../nodes/lib/end-to-end-id.js';

describe('the msg kept with an acknowledged message', () => {
  it('takes a Buffer payload back from the record, which holds it already, and stores the rest', () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    const stored = storableMessage({ _msgid: 'm1', topic: 't', payload, extra: { a: 1 } }, payload);
    assert.ok(stored && !stored.includes('"data"'), 'no Buffer JSON in what is stored');
    assert.deepEqual(parseStoredMessage(stored, payload), {
      _msgid: 'm1',
      topic: 't',
      payload,
      extra: { a: 1 },
    });
  });

  it('keeps a payload that is not the published bytes (an object, or a Buffer wrapped in an envelope) in the msg', () => {
    const published = Buffer.from('{"id":"x","payload":"..."}');
    const original = Buffer.from('raw');
    for (const payload of [{ celsius: 21.5 }, original, 'text']) {
      const stored = storableMessage({ _msgid: 'm2', payload, other: Buffer.from('b') }, published);
      assert.deepEqual(parseStoredMessage(stored, published), {
        _msgid: 'm2',
        payload,
        other: Buffer.from('b'),
      });
    }
  });

  it('takes a Buffer payload back from the message-id envelope that holds it, not from its own JSON', () => {
    const payload = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const envelope = wrapEnvelope(newMessageId(), payload, 'durable-mqtt/receipts/n1');
    const stored = storableMessage({ _msgid: 'm4', payload, note: 'n' }, envelope, payload);
    assert.ok(stored !== undefined && !stored.includes('222'), 'no byte of the payload in the JSON');
    assert.deepEqual(parseStoredMessage(stored, envelope), { _msgid: 'm4', payload, note: 'n' });
  });

  it('keeps what JSON can hold of a msg it cannot, and nothing when none was stored', () => {
    const circular: Record<string, unknown> = { _msgid: 'm3', topic: 't', payload: 'p' };
    circular.self = circular;
    assert.deepEqual(parseStoredMessage(storableMessage(circular, Buffer.from('p')), Buffer.from('p')), {
      _msgid: 'm3',
      topic: 't',
      payload: 'p',
    });
    assert.equal(parseStoredMessage(undefined, Buffer.alloc(0)), undefined);
  });
});
