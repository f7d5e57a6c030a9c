import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionOptions, Endpoint } from '../lib/connection/types.js';

/** Short address shown in logs and labels, never with credentials. */
export function describeEndpoint(endpoint: Endpoint): string {
  return endpoint.transport === 'embedded'
    ? `embedded:${endpoint.brokerId}`
    : `${endpoint.transport}://${endpoint.host}:${endpoint.port}${endpoint.path ?? ''}`;
}

/** MQTT 5 ends a session with expiry 0 when the connection closes: not persistent, whatever cleanSession says. */
export function isPersistent(options: ConnectionOptions): boolean {
  return !options.cleanSession && (options.protocolVersion !== 5 || (options.sessionExpiryInterval ?? 0) > 0);
}

/** A persistent session that a broker config opened at its broker: enough to find it there again. */
export interface SessionRecord {
  /** The broker, as logs show it (never with credentials). */
  broker: string;
  clientId: string;
  /** MQTT 5 session expiry in seconds; absent on MQTT 3.1 / 3.1.1, where a session lasts until removed. */
  sessionExpiry?: number;
}

/** The persistent session `settings` open, or undefined for a clean one. */
function sessionOf(settings: ConnectionOptions): SessionRecord | undefined {
  if (!isPersistent(settings)) return undefined;
  const record: SessionRecord = { broker: describeEndpoint(settings.endpoint), clientId: settings.clientId };
  if (settings.protocolVersion === 5) record.sessionExpiry = settings.sessionExpiryInterval;
  return record;
}

const sameSession = (a: SessionRecord | undefined, b: SessionRecord | undefined) =>
  a !== undefined && b !== undefined && a.broker === b.broker && a.clientId === b.clientId;

/**
 * The last persistent session of one broker config, kept in a small file beside the nodes' other
 * data (`<userDir>/durable-mqtt/session/<config id>.json`), so that a deploy that moves the config
 * off it (clean session on, another client id or broker) can say what the broker still holds: the
 * session with its subscriptions and the QoS 1/2 messages queued for them, which nothing reads now.
 */
export class SessionLedger {
  private readonly file: string;

  constructor(directory: string) {
    this.file = `${directory}.json`;
  }

  /**
   * The recorded session, when `settings` open another (or a clean one); `discarded` when they are a
   * clean session under the same client id at the same network broker, which removes it there [MQTT-3.1.2-6].
   * The embedded broker's clean sessions go through its core, with no CONNECT: they remove nothing.
   */
  leftBehind(settings: ConnectionOptions): { left: SessionRecord; discarded: boolean } | undefined {
    const recorded = this.read();
    const current = sessionOf(settings);
    if (!recorded || sameSession(recorded, current)) return undefined;
    const discarded =
      current === undefined &&
      settings.endpoint.transport !== 'embedded' &&
      describeEndpoint(settings.endpoint) === recorded.broker &&
      settings.clientId === recorded.clientId;
    return { left: recorded, discarded };
  }

  /** The config connected with `settings`: their session is the one to remember, or, clean, none is. */
  connected(settings: ConnectionOptions): void {
    const current = sessionOf(settings);
    try {
      if (!current) return rmSync(this.file, { force: true });
      const recorded = this.read();
      if (sameSession(current, recorded) && current.sessionExpiry === recorded?.sessionExpiry) return;
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileSync(this.file, JSON.stringify(current));
    } catch {
      // A record that cannot be written costs only the warning it would give one day.
    }
  }

  /** The config is deleted: its record goes. */
  forget(): void {
    rmSync(this.file, { force: true });
  }

  private read(): SessionRecord | undefined {
    try {
      const record = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<SessionRecord>;
      if (typeof record.broker !== 'string' || typeof record.clientId !== 'string') return undefined;
      return record as SessionRecord;
    } catch {
      return undefined;
    }
  }
}
