import type { IPublishPacket, Subscriber, SubscribeFailure } from './types.js';

/** Milliseconds a subscription kept at the broker waits for an in node to take it back. */
export const PARKING_GRACE = 10_000;

interface ParkedMessage {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
  /** Settles the hold on the message's acknowledgment. */
  release: (hold?: Promise<void> | void) => void;
}

/**
 * Stands in for an in node between its close and its restart when a persistent
 * session keeps its subscription at the broker (a redeploy of that node alone):
 * the QoS 1/2 messages that arrive meanwhile are held, unacknowledged, and handed
 * to the node that takes the filter back. If none does within the grace period
 * (the node's topic changed), the subscription is given up and they are released.
 */
export class ParkedSubscription implements Subscriber {
  readonly holdsAcknowledgments = true;
  private readonly messages: ParkedMessage[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly filter: string,
    onExpired: (parked: ParkedSubscription) => void,
  ) {
    this.timer = setTimeout(() => onExpired(this), PARKING_GRACE);
    this.timer.unref();
  }

  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void | Promise<void> {
    // QoS 0 promises nothing, and has no acknowledgment to hold.
    if (packet.qos === 0) return;
    return new Promise<void>((resolve) => {
      this.messages.push({
        topic,
        payload,
        packet,
        release: (hold) => void Promise.resolve(hold).then(resolve),
      });
    });
  }

  onSubscribeFailure(_failure: SubscribeFailure): void {}

  /** Gives every held message to `subscriber`; each is acknowledged when it is done with it. */
  handOver(subscriber: Subscriber): void {
    clearTimeout(this.timer);
    for (const { topic, payload, packet, release } of this.messages.splice(0))
      release(subscriber.onMessage(topic, payload, packet));
  }

  /** Acknowledges what is held without delivering it; returns how many messages that was. */
  release(): number {
    clearTimeout(this.timer);
    const messages = this.messages.splice(0);
    for (const message of messages) message.release();
    return messages.length;
  }
}
