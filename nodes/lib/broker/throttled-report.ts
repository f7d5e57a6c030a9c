/**
 * Reports a repeated event at most once per interval: the first at once, the
 * next ones together at the end of the interval, with how many there were. A
 * client that provokes thousands of events a second cannot flood the log.
 */
export class ThrottledReport<Sample> {
  private pending = 0;
  private lastSample: Sample | undefined;
  private lastReportAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly report: (count: number, lastSample: Sample) => void,
  ) {}

  add(sample: Sample): void {
    this.pending++;
    this.lastSample = sample;
    if (this.timer) return;
    const wait = this.lastReportAt + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait).unref();
  }

  /** Reports what is pending now and stops the timer. */
  close(): void {
    this.flush();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === 0) return;
    const count = this.pending;
    this.pending = 0;
    this.lastReportAt = Date.now();
    this.report(count, this.lastSample as Sample);
  }
}
