import type { DisconnectReason } from '../lib/connection/types.js';
import type { Translate } from './i18n.js';

/** CONNACK return codes of MQTT 3.1.1 and the common MQTT 5 reason codes that have a message in the catalog. */
const KNOWN_REFUSALS = [
  1, 2, 3, 4, 5, 0x80, 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99,
  0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
] as const;
type KnownRefusal = (typeof KNOWN_REFUSALS)[number];
const knownRefusals: ReadonlySet<number> = new Set(KNOWN_REFUSALS);

/** The catalog key that explains a CONNACK refusal code, if the catalog has one. */
export function refusalKey(returnCode: number): `connack.${KnownRefusal}` | undefined {
  return knownRefusals.has(returnCode) ? `connack.${returnCode as KnownRefusal}` : undefined;
}

/** A disconnect reason in the runtime's language. */
export function describeReason(t: Translate, reason: DisconnectReason): string {
  switch (reason.code) {
    case 'refused': {
      const code = reason.returnCode ?? 0;
      const key = refusalKey(code);
      const text = key ? t(key) : reason.message;
      return t('errors.connection-refused', { reason: text, code });
    }
    case 'embedded-missing':
      return t('errors.embedded-missing');
    case 'lost':
      return t('errors.connection-lost');
    case 'network':
      return reason.message;
  }
}

/**
 * The failure each broker config last logged, by config id. Module state, so it outlives a redeploy:
 * a config that keeps failing for one cause says so once, not at every retry or deploy.
 */
const loggedFailures = new Map<string, string>();

/** Whether `text` is news for config `configId`, remembering it if so. */
export function isNewFailure(configId: string, text: string): boolean {
  if (loggedFailures.get(configId) === text) return false;
  loggedFailures.set(configId, text);
  return true;
}

/** The config connected, or was deleted: its next failure is news again. */
export function forgetFailure(configId: string): void {
  loggedFailures.delete(configId);
}
