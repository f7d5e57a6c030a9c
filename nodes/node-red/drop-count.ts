import type { Translate } from './i18n.js';

/**
 * Messages a node refused or lost, and since when. The status shows "3 dropped since 14:05"
 * (the runtime's local time of the first drop) until the node is redeployed, so a count left
 * from an outage that is over still says when it began.
 */
export class DropCount {
  private count = 0;
  private since: Date | undefined;

  add(): void {
    if (this.count === 0) this.since = new Date();
    this.count++;
  }

  /** The status text, or undefined while nothing was dropped. */
  text(t: Translate): string | undefined {
    if (!this.since) return undefined;
    const time = `${pad(this.since.getHours())}:${pad(this.since.getMinutes())}`;
    return t('status.dropped', { count: this.count, time });
  }
}

const pad = (value: number) => String(value).padStart(2, '0');
