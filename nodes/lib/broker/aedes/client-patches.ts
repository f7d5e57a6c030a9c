/**
 * Exact duplicate detection for the messages Aedes delivers to one client, applied where
 * Aedes looks the function up at call time, so no Aedes file is changed.
 *
 * Aedes drops a message for a client when a message with a higher broker counter has reached
 * that client first: its `dedupe` keeps one high-water mark per broker. With LevelDB
 * persistence the enqueue writes of concurrent publishes complete out of order, so messages
 * overtake each other, and a subscriber with a persistent session silently misses some of them
 * (a few hundred of 20,000 in our tests; aedes issue #955). The duplicates Aedes must still drop
 * are the copies of one message that overlapping subscriptions of one client produce: they come
 * within one emit, so a short memory of the messages last delivered to the client finds them.
 */

/** The part of an Aedes client this module touches (not in Aedes' type declarations). */
interface AedesDelivery {
  duplicates: Record<string, number>;
  deliver0: DeliverFunction;
  deliverQoS: DeliverFunction;
}
type DeliverFunction = (packet: DeliveredPacket, callback: () => void) => void;
interface DeliveredPacket {
  brokerId?: string;
  brokerCounter?: number;
  qos?: number;
}

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
export function dedupeDeliveriesExactly(client: object): void {
  const delivery = client as AedesDelivery;
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
        delivery.duplicates[brokerId] = brokerCounter - 1;
      }
      deliver(packet, callback);
    };
  delivery.deliver0 = exactly(delivery.deliver0);
  const deliverQoS = exactly(delivery.deliverQoS);
  // Aedes hands a QoS 0 message to deliver0 from deliverQoS: checked there, not twice.
  const original = delivery.deliverQoS;
  delivery.deliverQoS = (packet, callback) =>
    packet.qos === 0 ? original(packet, callback) : deliverQoS(packet, callback);
}
