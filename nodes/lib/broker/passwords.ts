/**
 * Password hashes for the embedded broker's users: scrypt from node:crypto, so
 * nothing native to build (a Raspberry Pi installs from npm alone). A hash is
 * one string, `scrypt$<N>$<r>$<p>$<salt>$<key>` (base64), kept in the node's
 * credentials; the plain password is never stored.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PREFIX = 'scrypt';
/** 16 MiB and about 50 ms on a desktop, a few hundred on a Raspberry Pi: paid once per login. */
const COST = { N: 16_384, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** A stored hash may not ask for more than this (N · r · 128 bytes): a tampered flow cannot exhaust memory. */
const MAX_MEMORY = 64 * 1024 * 1024;

function derive(password: Buffer, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLength, { ...options, maxmem: MAX_MEMORY * 2 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(Buffer.from(password, 'utf8'), salt, KEY_LENGTH, COST);
  return [PREFIX, COST.N, COST.r, COST.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  options: { N: number; r: number; p: number };
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const integers = [N, r, p].every((value) => Number.isSafeInteger(value) && value >= 1);
  const validCost = integers && N > 1 && (N & (N - 1)) === 0 && p <= 16 && N * r * 128 <= MAX_MEMORY;
  const salt = Buffer.from(parts[4], 'base64');
  const key = Buffer.from(parts[5], 'base64');
  if (!validCost || salt.length === 0 || key.length < 16) return undefined;
  return { options: { N, r, p }, salt, key };
}

/** Whether `value` is a hash made by hashPassword (rather than, say, a plain password typed into a flow file). */
export function isPasswordHash(value: string): boolean {
  return parseHash(value) !== undefined;
}

export async function verifyPassword(password: Buffer | string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const given = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const key = await derive(given, parsed.salt, parsed.key.length, parsed.options);
  return timingSafeEqual(key, parsed.key);
}
