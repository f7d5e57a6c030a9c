import { DEFAULT_SUBSCRIPTION_OPTIONS, type SubscriptionOptions } from '../lib/connection/types.js';

/** An MQTT 5 subscription option that is not one: `nl` or `rap` not a boolean, `rh` not 0, 1 or 2. */
export class InvalidSubscriptionOptionError extends Error {
  constructor(
    readonly option: keyof SubscriptionOptions,
    readonly value: unknown,
  ) {
    super(`${option} cannot be ${String(value)}`);
    this.name = 'InvalidSubscriptionOptionError';
  }
}

/** Where the options are read from: an in node's settings, a msg, or a topic object of msg.topic. */
type OptionSource = { nl?: unknown; rap?: unknown; rh?: unknown };

function readFlag(source: OptionSource, name: 'nl' | 'rap', fallback: boolean): boolean {
  const value = source[name];
  if (value === undefined || value === '' || value === null) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new InvalidSubscriptionOptionError(name, value);
}

/**
 * No Local, Retain As Published and Retain Handling as `source` gives them (booleans or "true"/"false",
 * 0, 1, 2 as numbers or strings, as the core mqtt in node reads them), each one it leaves out taken
 * from `fallback`; throws InvalidSubscriptionOptionError for one it gives wrong.
 */
export function readSubscriptionOptions(
  source: OptionSource,
  fallback: SubscriptionOptions = DEFAULT_SUBSCRIPTION_OPTIONS,
): SubscriptionOptions {
  const rhValue = source.rh;
  let rh = fallback.rh;
  if (rhValue !== undefined && rhValue !== '' && rhValue !== null) {
    const number = typeof rhValue === 'string' ? Number(rhValue) : rhValue;
    if (number !== 0 && number !== 1 && number !== 2) throw new InvalidSubscriptionOptionError('rh', rhValue);
    rh = number;
  }
  return { nl: readFlag(source, 'nl', fallback.nl), rap: readFlag(source, 'rap', fallback.rap), rh };
}

/** Whether `options` ask anything of the broker that a subscription without options would not. */
export function hasSubscriptionOptions(options: SubscriptionOptions): boolean {
  return options.nl || options.rap || options.rh !== 0;
}
