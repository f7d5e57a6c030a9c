/**
 * Holds the messages Aedes hands a client before that client's CONNACK.
 *
 * Aedes 1.2 restores the subscriptions of a resuming persistent session before it
 * sends the CONNACK (storing the will and registering the client come between), and
 * a message published meanwhile goes out at once: a PUBLISH before the CONNACK, which
 * MQTT forbids [MQTT-3.2.0-1]. MQTT.js then stops reading, waiting on that message,
 * and never sees its CONNACK: the session hangs. With a persistence on the network
 * (Redis) the gap is a few round trips long, and a client resuming under traffic falls into it.
 *
 * Held messages go out once the client is connected, that is once its stored queue has
 * been sent, less those the queue already held (a message published as the session
 * resumed is both queued and delivered live).
 */

import { withOverrides } from './persistence-patches.js';

/** The part of an Aedes client this module touches (not in Aedes' type declarations). */
interface AedesConnectingClient {
  connected: boolean;
  closed: boolean;
  deliver0: DeliverFunction;
  deliverQoS: DeliverFunction;
  once(event: 'connected', listener: () => void): void;
}
interface DeliveredPacket {
  brokerId?: string;
  brokerCounter?: number | string;
}
type DeliverFunction = (packet: DeliveredPacket, callback: () => void) => void;

interface OutgoingUpdates {
  outgoingUpdate(client: object, packet: DeliveredPacket): Promise<void>;
}

/** The messages of its stored queue sent to each client still connecting, by broker id and counter. */
const sentFromQueue = new WeakMap<object, Set<string>>();

function keyOf(packet: DeliveredPacket): string | undefined {
  const { brokerId, brokerCounter } = packet;
  return brokerId === undefined || brokerCounter === undefined ? undefined : `${brokerId}:${brokerCounter}`;
}

/**
 * `persistence`, noting the queued messages sent to a client that is connecting: Aedes
 * updates each in the persistence just before it writes it to the client.
 */
export function noteQueueResends<P extends OutgoingUpdates>(persistence: P): P {
  const outgoingUpdate = (client: object, packet: DeliveredPacket) => {
    // Asked first: once the client is connected (nearly always), no key is built.
    const key = (client as AedesConnectingClient).connected ? undefined : keyOf(packet);
    if (key) {
      let sent = sentFromQueue.get(client);
      if (!sent) sentFromQueue.set(client, (sent = new Set()));
      sent.add(key);
    }
    return persistence.outgoingUpdate(client, packet);
  };
  return withOverrides(persistence, { outgoingUpdate });
}

/** Makes `client` get what is delivered to it before it is connected only once it is; call before it reads a packet. */
export function deliverAfterConnack(client: object): void {
  const connecting = client as AedesConnectingClient;
  let held: { packet: DeliveredPacket; deliver: DeliverFunction }[] | undefined = [];
  const holding =
    (deliver: DeliverFunction): DeliverFunction =>
    (packet, callback) => {
      if (!held || connecting.connected || connecting.closed) return deliver(packet, callback);
      held.push({ packet, deliver });
      // The bus waits for this callback before it hands out more messages, to every client: not for a
      // client still connecting. A persistent session keeps the message queued until acknowledged.
      setImmediate(callback);
    };
  connecting.deliver0 = holding(connecting.deliver0);
  connecting.deliverQoS = holding(connecting.deliverQoS);
  connecting.once('connected', () => {
    const release = held ?? [];
    held = undefined;
    const sent = sentFromQueue.get(client);
    sentFromQueue.delete(client);
    for (const { packet, deliver } of release) {
      const key = keyOf(packet);
      if (!(key && sent?.has(key))) deliver(packet, () => undefined);
    }
  });
}
