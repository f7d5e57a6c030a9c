/**
 * How the embedded broker closes Aedes when the node stops: Aedes sends each connected MQTT 5 client
 * DISCONNECT 0x8B, Server shutting down [MQTT-3.14.4-3], before it closes the connection, so the
 * connections are cut only once that is written; a client that reads nothing holds its write, so
 * they are cut after a grace in any case.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };

/** How long the clients have to take their DISCONNECT before their connections are cut. */
const SHUTDOWN_GRACE_MS = 1000;

export interface Shutdown {
  /** Every client was told, or the grace is over: the connections may be cut. */
  told: Promise<void>;
  /** Aedes has closed. */
  closed: Promise<void>;
}

/** Closes `aedes` (nothing to wait for when it is absent or closed already). */
export function shutDown(aedes: Aedes | undefined): Shutdown {
  if (!aedes || aedes.closed) return { told: Promise.resolve(), closed: Promise.resolve() };
  const closed = new Promise<void>((resolve) => aedes.close(() => resolve()));
  return { told: Promise.race([closed, delay(SHUTDOWN_GRACE_MS, undefined, { ref: false })]), closed };
}
