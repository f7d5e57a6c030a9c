/**
 * Which receipts make a message delivered (the out node's `expect` setting) and where they go by
 * default. Apart from receipt.ts, whose wire format needs Node.js: the editor bundles this module to
 * check `expect` with the runtime's own rule.
 */

/** Longest subscriber name: in `expect`, and taken from a receipt. */
export const MAX_SUBSCRIBER_NAME_LENGTH = 200;

/** Which receipts make a message delivered: a number of subscribers, or these named ones. */
export type Expectation = { count: number } | { names: string[] };

/**
 * The `expect` setting: empty for one receipt, a whole number for that many (from different
 * subscribers), or a comma-separated list of subscriber names. Undefined when it is none of these.
 */
export function parseExpectation(text: string): Expectation | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return { count: 1 };
  if (/^\d+$/.test(trimmed)) {
    const count = Number(trimmed);
    return count >= 1 && count <= 1000 ? { count } : undefined;
  }
  const names = [...new Set(trimmed.split(',').map((name) => name.trim()))];
  if (names.some((name) => name === '' || name.length > MAX_SUBSCRIBER_NAME_LENGTH)) return undefined;
  return { names };
}

/**
 * Whether the positive receipts from `by` (distinct subscriber names: a set, or a map keyed by them)
 * satisfy the expectation.
 */
export function expectationMet(
  expectation: Expectation,
  by: { readonly size: number; has(name: string): boolean },
): boolean {
  if ('count' in expectation) return by.size >= expectation.count;
  return expectation.names.every((name) => by.has(name));
}

/** The default receipt topic of an out node: its own, so receipts for other nodes never reach it. */
export function defaultReceiptTopic(nodeId: string): string {
  return `durable-mqtt/receipts/${nodeId}`;
}
