/**
 * Every patch of an Aedes persistence, each with its reason. The offline queue bound, a
 * policy with its own state, wraps the persistence in offline-queue-bound.ts with withOverrides.
 */
import { Readable } from 'node:stream';
import type { Client } from 'aedes' with { 'resolution-mode': 'import' };
import type { AedesPacket } from 'aedes-packet' with { 'resolution-mode': 'import' };
import AsyncRedisPersistence from 'aedes-persistence-redis-v12/asyncPersistence.js';
// The async Aedes persistence Aedes requires since 1.0 (the package's main export is the callback one).
import AsyncMemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { capQueuedQoS, nameQueuedSubscriptions, noteSentFromQueue } from './client-patches.js';
import { topicMatches } from '../../topic.js';
import type { BrokerMessage } from '../core-session.js';
import type { EventEmitter } from 'node:events';
import type { AedesClient, AedesPersistence, ClientRef, DeliveredPacket } from './types.js';

/**
 * `persistence` with the methods in `overrides` replaced; every other one is its own.
 * The Aedes persistences keep their state in #private fields, so their methods must run
 * with the persistence itself as `this`, not the proxy: each is bound once, on first use.
 * A method already bound (or replaced) is answered from the one map before anything else: Aedes
 * reads a method of its persistence for each packet, through three of these proxies, and asking
 * the inner ones first every time was 3 % of the broker's time at QoS 1 and 2 (bench, clients job).
 */
export function withOverrides<P extends object>(persistence: P, overrides: Record<string, unknown>): P {
  const methods = new Map<PropertyKey, unknown>(Object.entries(overrides));
  return new Proxy(persistence, {
    get(target, property) {
      const known = methods.get(property);
      if (known !== undefined) return known;
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method: unknown = value.bind(target);
      methods.set(property, method);
      return method;
    },
  });
}

/**
 * The memory persistence, with the QoS 2 publications received and not yet released (its "incoming"
 * store) kept here. Aedes asks for a new QoS 2 publication first (one sent again before its PUBREL
 * is acknowledged and not published twice [MQTT-4.3.3-2]), and the memory persistence answers a new
 * one by throwing an Error Aedes never reads: even without its stack (Error.stackTraceLimit 0) that
 * answer was 5–7 % of the process's time at QoS 2 through the embedded broker over TCP (bench
 * `tcp --profile`). Here a miss is one shared rejection. Aedes only asks whether a packet is there,
 * so the packet is kept as it came.
 */
export class MemoryPersistence extends AsyncMemoryPersistence {
  /** By client id, the QoS 2 publications received and not released yet, by packet identifier. */
  private readonly unreleased = new Map<string, Map<number, AedesPacket>>();

  override incomingStorePacket(client: Client, packet: AedesPacket): Promise<void> {
    let packets = this.unreleased.get(client.id);
    if (!packets) this.unreleased.set(client.id, (packets = new Map()));
    packets.set(packet.messageId as number, packet);
    return DONE;
  }

  override incomingGetPacket(client: Client, packet: AedesPacket): Promise<AedesPacket> {
    const unreleased = this.unreleased.get(client.id)?.get(packet.messageId as number);
    return unreleased ? Promise.resolve(unreleased) : NO_SUCH_PACKET();
  }

  override incomingDelPacket(client: Client, packet: AedesPacket): Promise<void> {
    const packets = this.unreleased.get(client.id);
    if (!packets?.delete(packet.messageId as number)) return NO_SUCH_PACKET();
    if (packets.size === 0) this.unreleased.delete(client.id);
    return DONE;
  }

  override cleanIncoming(client: Client): Promise<void> {
    this.unreleased.delete(client.id);
    return DONE;
  }
}

const DONE = Promise.resolve();
const noSuchPacket = Object.assign(new Error('no such packet'), { stack: 'Error: no such packet' });
const NO_SUCH_PACKET = () => Promise.reject(noSuchPacket);

/**
 * `persistence`, for the messages a session's queue sends when its client connects:
 * - capping their QoS at the client's granted QoS (capQueuedQoS in client-patches.ts), and naming
 *   the identifiers of the subscriptions they match (nameQueuedSubscriptions);
 * - noting them for the hold of deliverAfterConnack (client-patches.ts): Aedes updates each in
 *   the persistence just before it writes it to the client;
 * - marking DUP on those sent before [MQTT-3.3.1-1]: Aedes sends them again with DUP clear. A
 *   queued message that has a packet identifier got it when it was written to the client, so it
 *   may have arrived; one queued while the client was away has none. A subscriber that tells a
 *   redelivery by DUP (the in node's quarantine, for a message without an id) depends on it.
 */
export function noteQueueResends<P extends AedesPersistence>(persistence: P): P {
  const outgoingUpdate = (client: ClientRef, packet: DeliveredPacket) => {
    // Asked first: once the client is connected (nearly always), nothing is noted and the QoS is capped already.
    if (!(client as AedesClient).connected) {
      noteSentFromQueue(client, packet);
      capQueuedQoS(client as AedesClient, packet);
      nameQueuedSubscriptions(client as AedesClient, packet);
    }
    return persistence.outgoingUpdate(client, packet);
  };
  const outgoingStream = (client: ClientRef) =>
    Readable.from(markSentBefore(persistence.outgoingStream(client)));
  return withOverrides(persistence, { outgoingUpdate, outgoingStream });
}

async function* markSentBefore(queue: AsyncIterable<DeliveredPacket>): AsyncGenerator<DeliveredPacket> {
  for await (const packet of queue) {
    if (packet.messageId !== undefined && packet.messageId !== null) packet.dup = true;
    yield packet;
  }
}

/**
 * [MQTT-4.7.2-1] for retained messages too: a filter starting with a wildcard gets no `$` topic.
 * Aedes holds its live deliveries to the rule, but the stores' retained streams, which Aedes sends
 * on SUBSCRIBE, match `#` and `+` to the broker's own retained `$SYS/broker/…` topics.
 */
export function retainedDollarRule<P extends AedesPersistence>(persistence: P): P {
  const createRetainedStreamCombi = (filters: string[]) =>
    Readable.from(withDollarRule(persistence.createRetainedStreamCombi(filters), filters));
  return withOverrides(persistence, { createRetainedStreamCombi });
}

async function* withDollarRule(retained: AsyncIterable<BrokerMessage>, filters: string[]) {
  for await (const message of retained)
    if (!message.topic.startsWith('$') || filters.some((filter) => topicMatches(filter, message.topic)))
      yield message;
}

/**
 * aedes-persistence-redis 12 answers its streams as async generators; Aedes pipes the retained
 * ones (a generator has no pipe(): the subscribe would throw outside any handler and stop Node-RED).
 */
export class RedisPersistence extends AsyncRedisPersistence {
  override createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(super.createRetainedStreamCombi(patterns));
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  override outgoingStream(client: Client): Readable {
    return Readable.from(super.outgoingStream(client));
  }
}

/**
 * Makes the broker forget the QoS 2 publications a clean session stored until their PUBREL, when
 * such a session starts and when it ends [MQTT-3.1.2-6]. Aedes 1.2 does (cleanIncoming); 2.0.0-beta.1
 * branched off before, and the next session of the client id has its publication with a reused
 * packet identifier acknowledged and never delivered (test/broker-conformance.test.ts). The start is
 * taken once the client is registered, after any takeover of a connection with the same id.
 */
export function forgetIncomingOfCleanSessions(
  broker: EventEmitter,
  persistence: AedesPersistence,
  onError: (error: Error) => void,
): void {
  const forget = (client: AedesClient) => void persistence.cleanIncoming(client).catch(onError);
  broker.on('client', (client: AedesClient) => {
    if (client._cleanStart) forget(client);
  });
  broker.on('clientDisconnect', (client: AedesClient) => {
    if (client.clean) forget(client);
  });
}
