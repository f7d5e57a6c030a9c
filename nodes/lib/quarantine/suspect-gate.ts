/**
 * Who may enter the flow while a message that may have crashed it comes back. Counting every
 * delivery in the flow when the process dies would blame each message that was there with the
 * culprit: delivered again together after every restart, they would all reach maxDeliveries and be
 * quarantined with it. So a suspect (a message passed before and not completed since) enters alone:
 * it waits for the messages in the flow to finish, later ones wait for it, and suspects take turns
 * in their order of arrival. Only the message that really crashes the flow then counts the crash.
 *
 * Copies of one message (a publisher sending it again while the first copy is still on its way)
 * take turns too, and whether a copy is a suspect is asked only once the copy before it has left:
 * copies let in side by side would each count one delivery, and a message whose flow never failed
 * would reach maxDeliveries on its own copies. After a copy that completed, the next one is a first
 * delivery again; after one that failed, a suspect.
 */
export class SuspectGate {
  /** Deliveries entered and not left. */
  private inFlow = 0;
  /** Suspects waiting for their turn or in the flow: while any, nobody else enters. */
  private suspects = 0;
  /** The suspect in the flow, alone. */
  private alone: { key: string; leave: () => void } | undefined;
  /** Resolves when the last suspect has left. */
  private noSuspects: Promise<void> = Promise.resolve();
  private openToAll: () => void = () => {};
  /** Resolves when the turn of the latest suspect to arrive is over. */
  private turns: Promise<void> = Promise.resolve();
  private emptied: (() => void)[] = [];
  /**
   * The keys with a delivery between `enter` and `leave`, each with the later copies of that key
   * waiting for it to leave, in their order of arrival.
   */
  private readonly copiesWaiting = new Map<string, (() => void)[]>();

  /**
   * Resolves when delivery `key` may go into the flow. `isSuspect` is asked once the copies of `key`
   * that came before have left, so it sees what they left behind; suspects enter alone.
   */
  async enter(key: string, isSuspect: () => boolean): Promise<void> {
    const waiting = this.copiesWaiting.get(key);
    if (waiting) await new Promise<void>((resolve) => waiting.push(resolve));
    else this.copiesWaiting.set(key, []);
    if (!isSuspect()) {
      while (this.suspects > 0) await this.noSuspects;
      this.inFlow++;
      return;
    }
    if (this.suspects++ === 0) this.noSuspects = new Promise((resolve) => (this.openToAll = resolve));
    const previous = this.turns;
    let endTurn: () => void = () => {};
    this.turns = new Promise((resolve) => (endTurn = resolve));
    await previous;
    while (this.inFlow > 0) await new Promise<void>((resolve) => this.emptied.push(resolve));
    this.inFlow++;
    this.alone = {
      key,
      leave: () => {
        this.alone = undefined;
        if (--this.suspects === 0) this.openToAll();
        endTurn();
      },
    };
  }

  /** Delivery `key` left the flow (finished, or never went in): the next copy of `key` may enter. */
  leave(key: string): void {
    this.inFlow--;
    if (this.alone?.key === key) this.alone.leave();
    const next = this.copiesWaiting.get(key)?.shift();
    if (next) next();
    else this.copiesWaiting.delete(key);
    if (this.inFlow === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }
}
