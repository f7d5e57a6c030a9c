import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A persistent session that a broker config opened at its broker: enough to find it there again. */
export interface SessionRecord {
  /** The broker, as logs show it (never with credentials). */
  broker: string;
  clientId: string;
  /** MQTT 5 session expiry in seconds; absent on MQTT 3.1 / 3.1.1, where a session lasts until removed. */
  sessionExpiry?: number;
}

const sameSession = (a: SessionRecord, b: SessionRecord | undefined) =>
  b !== undefined && a.broker === b.broker && a.clientId === b.clientId;

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

  /** The recorded session, when the config's session now (undefined: a clean one) is another. */
  leftBehind(current: SessionRecord | undefined): SessionRecord | undefined {
    const recorded = this.read();
    return recorded && !sameSession(recorded, current) ? recorded : undefined;
  }

  /** The config connected with `current`: it is the session to remember, or, clean, none is. */
  connected(current: SessionRecord | undefined): void {
    try {
      if (!current) return rmSync(this.file, { force: true });
      if (sameSession(current, this.read()) && current.sessionExpiry === this.read()?.sessionExpiry) return;
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileSync(this.file, JSON.stringify(current));
    } catch {
      // A record that cannot be written costs only the warning it would give one day.
    }
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
