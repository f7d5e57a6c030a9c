/**
 * Who may enter the flow while a message that may have crashed it comes back. Counting every
 * delivery in the flow when the process dies would blame each message that was there with the
 * culprit: delivered again together after every restart, they would all reach maxDeliveries and be
 * quarantined with it. So a suspect (a message passed before and not completed since) enters alone:
 * it waits for the messages in the flow to finish, later ones wait for it, and suspects take turns
 * in their order of arrival. Only the message that really crashes the flow then counts the crash.
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

  /** Resolves when delivery `key` may go into the flow; `suspect` ones enter alone. */
  async enter(key: string, suspect: boolean): Promise<void> {
    if (!suspect) {
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

  /** Delivery `key` left the flow (finished, or never went in). */
  leave(key: string): void {
    this.inFlow--;
    if (this.alone?.key === key) this.alone.leave();
    if (this.inFlow === 0) for (const resolve of this.emptied.splice(0)) resolve();
  }
}
