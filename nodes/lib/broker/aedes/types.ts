/**
 * The Aedes internals the adapter and its patches touch, typed once. Aedes declares a
 * client's public face only and types its persistence as `any`: these are the parts of
 * aedes/lib/client.js, of a message as aedes-packet makes it and of the persistence contract
 * (aedes-persistence/abstract.js) that this folder reads or replaces.
 */
import type { EventEmitter } from 'node:events';
import type { Client } from 'aedes' with { 'resolution-mode': 'import' };
import type { BrokerMessage } from '../core-session.js';

/**
 * A message on its way to a client: what Aedes hands to the client's deliver functions, and
 * what an outgoing queue keeps (where a QoS 2 exchange left half-way is a PUBREL, with no topic).
 * Aedes stamps it with the id of the broker that took it and that broker's counter.
 */
export interface DeliveredPacket {
  cmd: string;
  topic?: string;
  qos?: number;
  brokerId?: string;
  brokerCounter?: number;
  /** Given once the message is sent to the client (QoS 1/2). */
  messageId?: number;
  /** Set on a message sent again [MQTT-3.3.1-1]. */
  dup?: boolean;
  /** MQTT 5 properties; Aedes sets the delivering subscription's identifier. */
  properties?: { subscriptionIdentifier?: number | number[] } & Record<string, unknown>;
}

/** One of a client's deliver functions; `callback` tells the message bus the client has taken the message. */
export type DeliverFunction = (packet: DeliveredPacket, callback: () => void) => void;

/**
 * An Aedes client with the fields its declarations leave out. Aedes looks `deliver0` and
 * `deliverQoS` up on the client at each call: replacing them patches one client, no Aedes file.
 */
export interface AedesClient extends Client {
  /** Whether the session ends with the connection (MQTT 3.1.1 clean session, MQTT 5 session expiry 0). */
  clean: boolean;
  /** Whether the CONNECT asked for a clean start (MQTT 3.1.1 clean session, MQTT 5 Clean Start). */
  _cleanStart?: boolean;
  /** The client's subscriptions by topic filter. */
  subscriptions: Record<string, unknown>;
  /** Aedes' own dedupe: the highest broker counter delivered to this client, per broker id. */
  duplicates: Record<string, number>;
  /**
   * MQTT 5: the keep-alive the broker holds the client to, told in the CONNACK as Server Keep Alive;
   * set from Aedes' keepaliveLimit, or before Aedes reads the CONNECT (a connection's own limit).
   */
  _serverKeepAlive?: number;
  /** How long Aedes waits for a packet from the client before it closes the connection, in ms; -1: no keep-alive. */
  _keepaliveInterval?: number;
  /** mqtt-packet's parser of the client's bytes: Aedes handles each packet it emits as 'packet'. */
  _parser: EventEmitter;
  /** Writes a message at QoS 0. */
  deliver0: DeliverFunction;
  /** Writes a message at its QoS (after the persistence has it, for a persistent session); QoS 0 goes to deliver0. */
  deliverQoS: DeliverFunction;
}

/** What the persistence reads of a client: its id (the offline queue bound makes one up to read a queue). */
export interface ClientRef {
  id: string;
}

/** The part of the Aedes persistence contract this folder calls or replaces. */
export interface AedesPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: DeliveredPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: DeliveredPacket): Promise<unknown>;
  /** Called by Aedes just before it writes a queued message to the client, with its packet identifier. */
  outgoingUpdate(client: ClientRef, packet: DeliveredPacket): Promise<void>;
  outgoingClearMessageId(
    client: ClientRef,
    packet: { messageId?: number },
  ): Promise<DeliveredPacket | undefined>;
  /** A Readable (memory, level) or an async generator (redis). */
  outgoingStream(client: ClientRef): AsyncIterable<DeliveredPacket>;
  /** Removes every subscription of the client (and, in Redis, its queue with the last of them). */
  cleanSubscriptions(client: ClientRef): Promise<void>;
  /** Forgets the QoS 2 publications of the client stored until their PUBREL. */
  cleanIncoming(client: ClientRef): Promise<void>;
  /** The subscriptions stored for a persistent session. */
  subscriptionsByClient(client: ClientRef): Promise<unknown[]>;
  /** Stores a retained message; an empty payload removes the one of its topic. */
  storeRetained(packet: {
    cmd: 'publish';
    topic: string;
    payload: Buffer;
    qos: 0;
    retain: true;
    dup: false;
    brokerId: string;
    brokerCounter: number;
  }): Promise<void>;
  /** The retained messages matching any of `filters`. */
  createRetainedStreamCombi(filters: string[]): AsyncIterable<BrokerMessage>;
}

/** The Aedes broker's own fields the adapter reads (its `persistence` is typed `any`). */
export interface AedesInternals {
  persistence: AedesPersistence;
}
