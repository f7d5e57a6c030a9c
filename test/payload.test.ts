import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { PayloadError, decodePayload, encodePayload } from '../nodes/lib/payload.js';

describe('payload conversions', () => {
  it('encodes each msg.payload type as documented', () => {
    const bytes = Buffer.from([0, 1, 255]);
    assert.equal(encodePayload(bytes), bytes);
    assert.equal(encodePayload('text'), 'text');
    assert.equal(encodePayload(3.5), '3.5');
    assert.equal(encodePayload(false), 'false');
    assert.equal(encodePayload(10n), '10');
    assert.equal(encodePayload(null), '');
    assert.equal(encodePayload(undefined), '');
    assert.equal(encodePayload({ a: [1, { b: null }] }), '{"a":[1,{"b":null}]}');
    assert.deepEqual(encodePayload(new Uint8Array([7, 8])), Buffer.from([7, 8]));
  });

  it('refuses payloads with no JSON form', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.throws(
      () => encodePayload(circular),
      (error: unknown) => error instanceof PayloadError && error.code === 'unserialisable',
    );
    assert.throws(() => encodePayload(() => 1), PayloadError);
  });

  it('decodes received bytes per datatype', () => {
    const json = Buffer.from('{"x":1}');
    assert.deepEqual(decodePayload(json, 'auto-detect'), { x: 1 });
    assert.equal(decodePayload(Buffer.from('42'), 'auto-detect'), 42);
    assert.equal(decodePayload(Buffer.from('hello'), 'auto-detect'), 'hello');
    assert.equal(decodePayload(Buffer.from('{broken'), 'auto-detect'), '{broken');
    assert.equal(decodePayload(Buffer.alloc(0), 'auto-detect'), '');
    const binary = Buffer.from([0xc3, 0x28]);
    assert.equal(decodePayload(binary, 'auto-detect'), binary, 'invalid UTF-8 stays a Buffer');
    assert.equal(decodePayload(json, 'utf8'), '{"x":1}');
    assert.equal(decodePayload(json, 'buffer'), json);
    assert.equal(decodePayload(json, 'base64'), 'eyJ4IjoxfQ==');
    assert.deepEqual(decodePayload(json, 'json'), { x: 1 });
    assert.throws(
      () => decodePayload(Buffer.from('nope'), 'json'),
      (error: unknown) => error instanceof PayloadError && error.code === 'invalid-json',
    );
  });
});
