import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/** What a broker config needs from an embedded broker: a way to open an in-process connection. */
export interface InProcessBroker {
  connectInProcess(): Duplex;
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
