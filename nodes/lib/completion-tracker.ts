/** How the flow finished with a message. */
export interface FlowOutcome {
  /** The timeout passed first. */
  timedOut: boolean;
  /** The first error a node of the flow reported for it (done(err), or a Catch node reached). */
  error?: string;
}

/**
 * Work to finish before the outcome is told (the acknowledgment, the receipt): a dedupe node writes
 * the key of a first copy once the flow has finished with it. A rejection makes the outcome an error.
 */
export type FinishingStep = (outcome: FlowOutcome) => Promise<void>;

/**
 * Follows a message through a flow by its id: each delivery to a node counts
 * one, each completion (the node called done) counts one off; the message is
 * finished when the count is back to zero. Fed by Node-RED's preDeliver and
 * onComplete hooks, which run synchronously inside send() and done().
 */
export class CompletionTracker {
  private readonly tracked = new Map<
    string,
    {
      pending: number;
      finish: (outcome: FlowOutcome) => void;
      timer: NodeJS.Timeout;
      error?: string;
      steps?: FinishingStep[];
    }
  >();

  /** How many messages are being followed (for tests and diagnostics). */
  get size(): number {
    return this.tracked.size;
  }

  /**
   * Follows `id` until the flow has finished with it, or `timeoutMs` has passed.
   * Call before sending the message, then `sent` once send() has returned.
   */
  track(id: string, timeoutMs: number, onFinished: (outcome: FlowOutcome) => void): void {
    const timer = setTimeout(() => this.finish(id, true), timeoutMs);
    // The sender's own share: counted off by sent(), so deliveries made during send() keep it open.
    this.tracked.set(id, { pending: 1, finish: onFinished, timer });
  }

  /** The message was handed to a node. */
  delivered(id: string): void {
    const entry = this.tracked.get(id);
    if (entry) entry.pending++;
  }

  /** A node finished with the message; the sender's own send counts as one. */
  completed(id: string): void {
    const entry = this.tracked.get(id);
    if (!entry) return;
    entry.pending--;
    if (entry.pending <= 0) this.finish(id, false);
  }

  /** A node of the flow reported an error for the message: the first one is kept for its outcome. */
  failed(id: string, error: string): void {
    const entry = this.tracked.get(id);
    if (entry && entry.error === undefined) entry.error = error;
  }

  /** Whether `id` is followed: an in node with ack: complete sent it and waits for the flow. */
  follows(id: string): boolean {
    return this.tracked.has(id);
  }

  /** Runs `step` once the flow has finished with `id`, before its outcome is told. */
  beforeFinish(id: string, step: FinishingStep): void {
    const entry = this.tracked.get(id);
    if (entry) (entry.steps ??= []).push(step);
  }

  /** The sending node's send() returned: its deliveries are counted, its own share is done. */
  sent(id: string): void {
    this.completed(id);
  }

  private finish(id: string, timedOut: boolean) {
    const entry = this.tracked.get(id);
    if (!entry) return;
    this.tracked.delete(id);
    clearTimeout(entry.timer);
    const outcome: FlowOutcome = entry.error === undefined ? { timedOut } : { timedOut, error: entry.error };
    const steps = entry.steps;
    if (!steps) return entry.finish(outcome);
    void Promise.allSettled(steps.map((step) => step(outcome))).then((results) => {
      const failure = results.find((result) => result.status === 'rejected');
      if (failure && outcome.error === undefined)
        outcome.error = String((failure.reason as Error | undefined)?.message ?? failure.reason);
      entry.finish(outcome);
    });
  }
}

/** One tracker for the runtime: Node-RED's hooks are global. */
export const flowCompletion = new CompletionTracker();
