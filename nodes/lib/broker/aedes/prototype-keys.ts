/**
 * Aedes 2.0.0-beta.1 branched off before the fix of GHSA-52qw-whmv-87c5 (Aedes 1.1.3): it keeps
 * its clients, the brokers of a cluster, and each client's subscriptions and dedupe marks in plain
 * objects keyed by what comes off the wire. A client id or a topic filter such as `constructor`
 * then reads back an inherited function, and the TypeError it throws escapes every handler: the
 * process, Node-RED, stops. These are the same maps without a prototype, as Aedes 1.2 has them.
 */
import type { AedesClient } from './types.js';

/** What Aedes keeps by client id and by broker id. */
export interface BrokerKeyMaps {
  clients: Record<string, unknown>;
  brokers: Record<string, unknown>;
}

/** Call once the broker is created, before it takes a connection: both maps are still empty. */
export function brokerMapsWithoutPrototype(broker: BrokerKeyMaps): void {
  broker.clients = Object.create(null) as Record<string, unknown>;
  broker.brokers = Object.create(null) as Record<string, unknown>;
}

/** Call before the client reads a packet: both maps are still empty. */
export function clientMapsWithoutPrototype(client: AedesClient): void {
  client.subscriptions = Object.create(null) as AedesClient['subscriptions'];
  client.duplicates = Object.create(null) as AedesClient['duplicates'];
}
