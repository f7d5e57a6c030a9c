/**
 * The broker core a clean-session client in this process works on (../core-session.ts): Aedes' own
 * publish and subscribe, which its client sessions use once packets are read.
 */
import type { Aedes } from 'aedes' with { 'resolution-mode': 'import' };
import type { BrokerCore } from '../core-session.js';
import type { SharedSubscriptions } from './shared-subscriptions.js';
import type { AedesInternals } from './types.js';

/** Aedes' publish and subscribe for `clientId`; `$share/` joins a group through `shared`. */
export function brokerCoreOf(
  aedes: Aedes,
  shared: SharedSubscriptions | undefined,
  clientId: string,
): BrokerCore {
  type Deliver = Parameters<Aedes['subscribe']>[1];
  return {
    publish: (message, done) => aedes.publish(message as never, done),
    subscribe: (filter, handler, done) =>
      shared?.subscribeCore(clientId, filter, handler)
        ? done()
        : aedes.subscribe(filter, handler as unknown as Deliver, done),
    unsubscribe: (filter, handler) =>
      shared?.unsubscribeCore(filter, handler) ||
      aedes.unsubscribe(filter, handler as unknown as Deliver, () => {}),
    retained: (filter) =>
      (aedes as unknown as AedesInternals).persistence.createRetainedStreamCombi([filter]),
  };
}
