export interface BackoffOptions {
  /** Milliseconds before the first retry. */
  initialDelay: number;
  /** Upper bound of the delay, in milliseconds. */
  maxDelay: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelay: 1000, maxDelay: 60_000 };

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random,
 * so clients that lost the same broker do not all come back at the same instant.
 */
export function nextReconnectDelay(
  attempt: number,
  options: Partial<BackoffOptions> = {},
  random: () => number = Math.random,
): number {
  const { initialDelay, maxDelay } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
