/**
 * Every patch of an Aedes client's internals, each with its reason. Each replaces the client's
 * `deliver0` and `deliverQoS`, which Aedes looks up on the client at each call, so no Aedes file
 * is changed; the adapter applies them to every client before it reads a packet.
 */
import type { AedesClient, ClientRef, DeliveredPacket, DeliverFunction } from './types.js';

/*
 * Exact duplicate detection for the messages Aedes delivers to one client.
 *
 * Aedes drops a message for a client when a message with a higher broker counter has reached
 * that client first: its `dedupe` keeps one high-water mark per broker. With LevelDB
 * persistence the enqueue writes of concurrent publishes complete out of order, so messages
 * overtake each other, and a subscriber with a persistent session silently misses some of them
 * (a few hundred of 20,000 in our tests; aedes issue #955). The duplicates Aedes must still drop
 * are the copies of one message that overlapping subscriptions of one client produce: they come
 * within one emit, so a short memory of the messages last delivered to the client finds them.
 */

/** Messages remembered per client: copies from overlapping subscriptions arrive within one emit. */
const REMEMBERED = 1024;

/** The last REMEMBERED numbers added, in a ring: O(1) to add and to look up, no iterator. */
class RecentNumbers {
  private readonly ring = new Array<number>(REMEMBERED);
  private readonly present = new Set<number>();
  private next = 0;

  has(n: number): boolean {
    return this.present.has(n);
  }

  add(n: number): void {
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.present.delete(evicted);
    this.ring[this.next] = n;
    this.next = (this.next + 1) % REMEMBERED;
    this.present.add(n);
  }
}

/** Replaces the client's high-water dedupe with an exact one; call before the client reads a packet. */
export function dedupeDeliveriesExactly(client: AedesClient): void {
  // By broker id: one entry for a single broker, one per instance in a cluster.
  const delivered = new Map<string, RecentNumbers>();
  const exactly =
    (deliver: DeliverFunction): DeliverFunction =>
    (packet, callback) => {
      const { brokerId, brokerCounter } = packet;
      if (brokerId !== undefined && brokerCounter !== undefined) {
        let recent = delivered.get(brokerId);
        if (!recent) delivered.set(brokerId, (recent = new RecentNumbers()));
        // Not handed to Aedes: for a persistent session its duplicate path clears the first queued
        // message without a packet identifier, which is the next message waiting to be sent.
        if (recent.has(brokerCounter)) return setImmediate(callback);
        recent.add(brokerCounter);
        // Below the mark, Aedes' own check lets the message through.
        client.duplicates[brokerId] = brokerCounter - 1;
      }
      deliver(packet, callback);
    };
  client.deliver0 = exactly(client.deliver0);
  const deliverQoS = exactly(client.deliverQoS);
  // Aedes hands a QoS 0 message to deliver0 from deliverQoS: checked there, not twice.
  const original = client.deliverQoS;
  client.deliverQoS = (packet, callback) =>
    packet.qos === 0 ? original(packet, callback) : deliverQoS(packet, callback);
}

/*
 * Holds the messages Aedes hands a client before that client's CONNACK.
 *
 * Aedes (1.2, and 2.0.0-beta.1 still) restores the subscriptions of a resuming persistent session before it
 * sends the CONNACK (storing the will and registering the client come between), and
 * a message published meanwhile goes out at once: a PUBLISH before the CONNACK, which
 * MQTT forbids [MQTT-3.2.0-1]. MQTT.js then stops reading, waiting on that message,
 * and never sees its CONNACK: the session hangs. With a persistence on the network
 * (Redis) the gap is a few round trips long, and a client resuming under traffic falls into it.
 *
 * Held messages go out once the client is connected, that is once its stored queue has
 * been sent, less those the queue already held (a message published as the session
 * resumed is both queued and delivered live): the persistence notes those as it sends
 * them (noteQueueResends in persistence-patches.ts).
 */

/** The messages of its stored queue sent to each client still connecting, by broker id and counter. */
const sentFromQueue = new WeakMap<ClientRef, Set<string>>();

function keyOf(packet: DeliveredPacket): string | undefined {
  const { brokerId, brokerCounter } = packet;
  return brokerId === undefined || brokerCounter === undefined ? undefined : `${brokerId}:${brokerCounter}`;
}

/** Notes that `packet`, from its stored queue, is being sent to `client` while it is still connecting. */
export function noteSentFromQueue(client: ClientRef, packet: DeliveredPacket): void {
  const key = keyOf(packet);
  if (!key) return;
  let sent = sentFromQueue.get(client);
  if (!sent) sentFromQueue.set(client, (sent = new Set()));
  sent.add(key);
}

/** Makes `client` get what is delivered to it before it is connected only once it is; call before it reads a packet. */
export function deliverAfterConnack(client: AedesClient): void {
  let held: { packet: DeliveredPacket; deliver: DeliverFunction }[] | undefined = [];
  const holding =
    (deliver: DeliverFunction): DeliverFunction =>
    (packet, callback) => {
      if (!held || client.connected || client.closed) return deliver(packet, callback);
      held.push({ packet, deliver });
      // The bus waits for this callback before it hands out more messages, to every client: not for a
      // client still connecting. A persistent session keeps the message queued until acknowledged.
      setImmediate(callback);
    };
  client.deliver0 = holding(client.deliver0);
  client.deliverQoS = holding(client.deliverQoS);
  client.once('connected', () => {
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
