/**
 * Every patch of an Aedes client's internals, each with its reason. Each replaces the client's
 * `deliver0` and `deliverQoS`, which Aedes looks up on the client at each call, so no Aedes file
 * is changed; the adapter applies them to every client before it reads a packet.
 */
import { topicMatches } from '../../topic.js';
import { publicFilter } from './shared-subscriptions.js';
import type { AedesClient, ClientRef, DeliveredPacket, DeliverFunction } from './types.js';

/*
 * The QoS of a delivered message: the lower of its publication's and the subscription's granted
 * QoS [MQTT-3.8.4-8] (MQTT 5: 3.8.4). Aedes lowers it only when a filter equals the topic, so a
 * QoS 1 subscriber to `a/#` got a QoS 2 publication to `a/b` at QoS 2.
 *
 * A client whose filters overlap gets one copy of each message (dedupeDeliveriesExactly), at the
 * highest QoS granted among its matching filters, as MQTT 5 allows [MQTT-3.3.4-2] (the `a/#` QoS 0
 * and `a/b` QoS 2 subscriber gets a QoS 2 publication to `a/b` at QoS 2, whichever filter the bus
 * hands it through first). Aedes' deliver functions do not know which filter matched: the
 * highest granted QoS is read from the client's subscriptions, shared ones by their public name
 * (they cap their message before it comes here, shared-subscriptions.ts, so it passes as it is).
 */

/**
 * The highest QoS granted among the client's filters that match `topic`; 0 when none does. Run for
 * every delivery: `for…in` over the map (it has no prototype, prototype-keys.ts) builds no array of
 * entries per message, as Object.entries did.
 */
function highestGrantedQoS(client: AedesClient, topic: string): number {
  let highest = 0;
  const subscriptions = client.subscriptions;
  for (const filter in subscriptions) {
    const granted = (subscriptions[filter] as { qos?: number } | undefined)?.qos ?? 0;
    if (granted > highest && topicMatches(publicFilter(filter), topic)) highest = granted;
  }
  return highest;
}

/**
 * Lowers a message of `client`'s stored queue, about to be sent as the session resumes, as
 * capDeliveredQoS lowers a live one: Aedes writes those straight from the queue. Never below 1:
 * only a filter granted QoS 1 or 2 queued it, and a QoS 0 copy would never be acknowledged out of the queue.
 */
export function capQueuedQoS(client: AedesClient, packet: DeliveredPacket): void {
  if (packet.cmd !== 'publish' || packet.topic === undefined || (packet.qos ?? 0) < 2) return;
  packet.qos = Math.max(1, Math.min(packet.qos ?? 0, highestGrantedQoS(client, packet.topic)));
}

/** Delivers each message at min(its QoS, the highest granted QoS of the client's matching filters); call before the client reads a packet. */
function capDeliveredQoS(client: AedesClient): void {
  const deliver0 = client.deliver0;
  const deliverQoS = client.deliverQoS;
  const capped: DeliverFunction = (packet, callback) => {
    const published = packet.qos ?? 0;
    if (published === 0 || packet.topic === undefined) return deliverQoS(packet, callback);
    const qos = Math.min(published, highestGrantedQoS(client, packet.topic));
    if (qos === published) return deliverQoS(packet, callback);
    // A copy: the message object may be the one the bus hands every subscription.
    deliverQoS({ ...packet, qos }, callback);
  };
  client.deliverQoS = capped;
  // Called by a QoS 0 filter, which forces QoS 0: the message goes at the client's highest granted QoS instead.
  client.deliver0 = (packet, callback) =>
    (packet.qos ?? 0) > 0 && packet.topic !== undefined && highestGrantedQoS(client, packet.topic) > 0
      ? capped(packet, callback)
      : deliver0(packet, callback);
}

/*
 * Every Subscription Identifier on the one copy a client with overlapping subscriptions gets.
 *
 * A server that sends one copy of a message matching several of a client's subscriptions must name
 * all of their identifiers [MQTT-3.3.4-3]; Aedes sends one copy (dedupeDeliveriesExactly keeps it
 * so) naming the identifier of whichever subscription the bus went through first. A client that
 * routes by identifier, as this package's connection does for its nodes, then gave the message to
 * one of them only: an in node on `plant/#` took what an out node's receipts on `plant/receipts`
 * were waiting for. Shared subscriptions send their own copy and are left out.
 */

/** The identifiers of the client's non-shared subscriptions that match `topic`. */
function matchingIdentifiers(client: AedesClient, topic: string): number[] {
  const identifiers: number[] = [];
  const subscriptions = client.subscriptions;
  for (const filter in subscriptions) {
    const identifier = (subscriptions[filter] as { si?: number } | undefined)?.si;
    if (identifier !== undefined && publicFilter(filter) === filter && topicMatches(filter, topic))
      identifiers.push(identifier);
  }
  return identifiers;
}

/**
 * The identifiers a message carrying `carried` should name: every matching one when `carried` is
 * one of them, none to change when it names a shared subscription (or nothing matches).
 */
function identifiersToName(
  client: AedesClient,
  topic: string,
  carried: number | undefined,
): number | number[] | undefined {
  const identifiers = matchingIdentifiers(client, topic);
  if (carried !== undefined && (identifiers.length < 2 || !identifiers.includes(carried))) return undefined;
  if (identifiers.length === 0) return undefined;
  return identifiers.length === 1 ? identifiers[0] : identifiers;
}

/** `packet` naming every identifier of the client's matching subscriptions: a copy when that changes it. */
export function withEverySubscriptionIdentifier(
  client: AedesClient,
  packet: DeliveredPacket,
): DeliveredPacket {
  const carried = packet.properties?.subscriptionIdentifier;
  if (typeof carried !== 'number' || packet.topic === undefined) return packet;
  const identifiers = identifiersToName(client, packet.topic, carried);
  if (identifiers === undefined) return packet;
  // Never in place: the bus hands one properties object to every subscription (frozen, in Aedes).
  return { ...packet, properties: { ...packet.properties, subscriptionIdentifier: identifiers } };
}

/**
 * Names the identifiers on a message of `client`'s stored queue, about to be sent as the session
 * resumes: Aedes queues a message for a client away without any (a shared subscription's copy is
 * queued with its own, shared-subscriptions.ts). `packet` is the client's own copy; its properties
 * object may be the store's, so it is replaced, not changed.
 */
export function nameQueuedSubscriptions(client: AedesClient, packet: DeliveredPacket): void {
  if (packet.cmd !== 'publish' || packet.topic === undefined) return;
  const carried = packet.properties?.subscriptionIdentifier;
  if (Array.isArray(carried)) return;
  const identifiers = identifiersToName(client, packet.topic, carried);
  if (identifiers !== undefined)
    packet.properties = { ...packet.properties, subscriptionIdentifier: identifiers };
}

/** Names every matching subscription's identifier on each message delivered; call before the client reads a packet. */
function echoEverySubscriptionIdentifier(client: AedesClient): void {
  const deliver0 = client.deliver0;
  const deliverQoS = client.deliverQoS;
  client.deliver0 = (packet, callback) => deliver0(withEverySubscriptionIdentifier(client, packet), callback);
  client.deliverQoS = (packet, callback) =>
    deliverQoS(withEverySubscriptionIdentifier(client, packet), callback);
}

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
function dedupeDeliveriesExactly(client: AedesClient): void {
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
function deliverAfterConnack(client: AedesClient): void {
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

/**
 * Applies every patch above to a client's deliveries; call before the client reads a packet. Each
 * wraps the one before: the hold until the CONNACK first, the duplicate check, then the
 * identifiers and the QoS on the copy that goes out.
 */
export function patchDeliveries(client: AedesClient): void {
  capDeliveredQoS(client);
  echoEverySubscriptionIdentifier(client);
  dedupeDeliveriesExactly(client);
  deliverAfterConnack(client);
}
