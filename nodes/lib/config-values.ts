import type { QoS } from 'mqtt-packet';

/** Flow JSON values arrive as numbers, numeric strings, booleans or "true"/"false": read them one way everywhere. */

export function readNumber(value: unknown, fallback: number): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  return fallback;
}

export function readBoolean(value: unknown, fallback: boolean): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return fallback;
}

export function readString(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? fallback : String(value);
}

/** A QoS from a node setting or a msg property; undefined when it is none of 0, 1, 2. */
export function readQos(value: unknown): QoS | undefined {
  const qos = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return qos === 0 || qos === 1 || qos === 2 ? qos : undefined;
}
