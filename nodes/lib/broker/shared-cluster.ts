/**
 * Shared subscriptions across the embedded brokers on one Redis. Every broker sees every message
 * (the message bus is Redis), so each broker with members of a group would give the group a copy.
 * Instead, each broker tells the others which of its shared subscriptions have a member connected,
 * or only members away with a persistent session (ClusterShares.heard), and for each message every
 * broker works out the same owner from the same view (ClusterShares.owns): only the owner delivers,
 * to one of its own members. The view is only as fresh as the last announcements: while a member
 * joins or leaves on another broker, a message may reach its group twice, or not at all.
 */

/** What one broker holds, by shared subscription key (`group/filter`). */
export interface BrokerShares {
  /** Shared subscriptions with a member connected to this broker. */
  connected: string[];
  /** Shared subscriptions whose members here are all away, one at least with a persistent session. */
  persistent: string[];
}

interface Heard {
  connected: Set<string>;
  persistent: Set<string>;
  /** Forgotten after this time unless announced again: a broker that stopped without a word. */
  until: number;
}

/** FNV-1a: the same number for the same message on every broker. */
function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

export class ClusterShares {
  private readonly others = new Map<string, Heard>();

  constructor(
    readonly brokerId: string,
    /** How long an announcement holds: a few times the interval between two. */
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** What `brokerId` announced; true when it was not known, so that it is told this broker's at once. */
  heard(brokerId: string, shares: BrokerShares): boolean {
    if (brokerId === this.brokerId) return false;
    const known = this.others.has(brokerId);
    this.others.set(brokerId, {
      connected: new Set(shares.connected),
      persistent: new Set(shares.persistent),
      until: this.now() + this.ttlMs,
    });
    return !known;
  }

  /**
   * Whether this broker gives the message `messageKey` (the same on every broker) to the shared
   * subscription `key`, holding itself a member connected, or only persistent ones away: the owner is
   * drawn among the brokers with a member connected, or failing those among the brokers where one waits.
   */
  owns(key: string, local: { connected: boolean; persistent: boolean }, messageKey: string): boolean {
    const now = this.now();
    const connected: string[] = local.connected ? [this.brokerId] : [];
    const persistent: string[] = local.persistent && !local.connected ? [this.brokerId] : [];
    for (const [brokerId, heard] of this.others) {
      if (heard.until < now) this.others.delete(brokerId);
      else if (heard.connected.has(key)) connected.push(brokerId);
      else if (heard.persistent.has(key)) persistent.push(brokerId);
    }
    const candidates = (connected.length > 0 ? connected : persistent).sort();
    if (candidates.length === 0) return false;
    return candidates[hashOf(messageKey) % candidates.length] === this.brokerId;
  }
}
