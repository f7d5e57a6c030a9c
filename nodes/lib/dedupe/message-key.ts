import { createHash } from 'node:crypto';
import { encodePayload } from '../payload.js';
import { isMessageId } from '../end-to-end-id.js';

/** What makes two messages the same. */
export type KeyKind = 'auto' | 'property' | 'payload';
export const KEY_KINDS: readonly KeyKind[] = ['auto', 'property', 'payload'];

/** Whether a key is compared across all topics or within its topic. */
export type KeyScope = 'global' | 'topic';
export const KEY_SCOPES: readonly KeyScope[] = ['global', 'topic'];

/** The part of a msg a key is made from. */
export interface KeyedMessage {
  topic?: unknown;
  payload?: unknown;
  messageId?: unknown;
}

export interface KeyOptions {
  kind: KeyKind;
  scope: KeyScope;
  /** With kind 'property': reads the configured property of a msg (Node-RED's getMessageProperty). */
  readProperty?: (msg: KeyedMessage) => unknown;
}

/** The msg has no value at the configured property: it cannot be told apart from others. */
export class MissingKeyError extends Error {
  readonly code = 'missing-key';
}

/** Longest key kept as it is; a longer one is hashed, so each remembered key has a bounded size. */
const MAX_PLAIN_KEY = 64;

/**
 * A function giving the dedupe key of a msg. Keys carry a one-letter prefix for
 * their origin (i: message id, h: hash of topic and payload, s: string property,
 * j: other property value as JSON, b: Buffer), so values of different kinds never collide.
 */
export function keyFunction(options: KeyOptions): (msg: KeyedMessage) => string {
  const base = baseKey(options);
  if (options.scope === 'global') return base;
  return (msg) => `${topicOf(msg)}\u0000${base(msg)}`;
}

function baseKey(options: KeyOptions): (msg: KeyedMessage) => string {
  switch (options.kind) {
    case 'payload':
      return contentKey;
    case 'auto':
      return (msg) => (isMessageId(msg.messageId) ? bounded(`i${msg.messageId}`) : contentKey(msg));
    case 'property': {
      const read = options.readProperty;
      if (!read) throw new Error('a property key needs a property to read');
      return (msg) => {
        const value = read(msg);
        if (value === undefined || value === null) throw new MissingKeyError('no value at the key property');
        return valueKey(value);
      };
    }
  }
}

function topicOf(msg: KeyedMessage): string {
  return typeof msg.topic === 'string' ? msg.topic : '';
}

/** A hash of topic and payload bytes (the bytes mqtt out would publish): 128 bits of SHA-256. */
export function contentKey(msg: KeyedMessage): string {
  const hash = createHash('sha256');
  hash.update(topicOf(msg));
  hash.update('\u0000');
  hash.update(encodePayload(msg.payload));
  return `h${hash.digest().toString('base64url', 0, 16)}`;
}

function valueKey(value: unknown): string {
  if (typeof value === 'string') return bounded(`s${value}`);
  if (Buffer.isBuffer(value)) return bounded(`b${value.toString('base64')}`);
  return bounded(`j${JSON.stringify(value)}`);
}

function bounded(key: string): string {
  if (key.length <= MAX_PLAIN_KEY) return key;
  return `${key[0]}#${createHash('sha256').update(key).digest().toString('base64url', 0, 16)}`;
}
