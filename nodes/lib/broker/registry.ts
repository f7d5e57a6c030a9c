import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { CoreSession } from './core-session.js';

/** What opening an in-process connection fails with when the embedded broker is not running, or stopping. */
export function embeddedBrokerMissing(): Error {
  return Object.assign(new Error('embedded broker is not running'), { code: 'EMBEDDED_MISSING' });
}

/** Who a broker config connects as. */
export interface SessionCredentials {
  clientId: string;
  username?: string;
  password?: string;
}

/** What a broker config needs from an embedded broker: ways to open an in-process connection. */
export interface InProcessBroker {
  /** An MQTT connection as a network client has one, for a persistent session. */
  connectInProcess(): Duplex;
  /** A clean session at the broker's core: no packets (see core-session.ts). */
  openCoreSession(credentials: SessionCredentials): Promise<CoreSession>;
}

/**
 * Embedded brokers running in this process, by node id. Config nodes start
 * before flow nodes, so a connection may look up a broker that is not there
 * yet and wait for its 'available' event.
 */
class EmbeddedBrokerRegistry extends EventEmitter {
  private readonly brokers = new Map<string, InProcessBroker>();

  register(id: string, broker: InProcessBroker): void {
    this.brokers.set(id, broker);
    this.emit('available', id);
  }

  unregister(id: string, broker: InProcessBroker): void {
    if (this.brokers.get(id) === broker) this.brokers.delete(id);
  }

  get(id: string): InProcessBroker | undefined {
    return this.brokers.get(id);
  }
}

export const embeddedBrokers = new EmbeddedBrokerRegistry();
embeddedBrokers.setMaxListeners(0);
