/**
 * The snapshots, while the tab is shown and only then: the runtime samples nothing until an editor
 * watches (lib/monitor-protocol.ts), so the sidebar posts `watch` when the tab appears and every
 * WATCH_RENEW_MS after, and stops when it goes. The editor tells a tab that it became the active one
 * (its onchange), but not that it stopped being shown (another tab, the sidebar closed, the browser
 * tab in the background): the tab's wrapper's display, the editor's `red-ui-sidebar-closed` class and
 * the page's visibility say it, and are watched.
 */
import { MONITOR_TOPIC, WATCH_RENEW_MS, type MonitorSnapshot } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import { failed, monitorRequest } from './requests.js';

export class MonitorFeed {
  private renewal: ReturnType<typeof setInterval> | undefined;
  private observer: MutationObserver | undefined;
  private readonly receive = (_topic: string, message: unknown) => this.present(message as MonitorSnapshot);
  private readonly visibilityChanged = () => this.check();
  /** The newest snapshot shown: an answer that comes after a newer one is not shown. */
  private shownAt = 0;

  /** `content`: the tab's content, inside the wrapper the sidebar shows and hides. */
  constructor(
    private readonly content: JQuery,
    private readonly show: (snapshot: MonitorSnapshot) => void,
  ) {}

  private present(snapshot: MonitorSnapshot): void {
    if (snapshot.at < this.shownAt) return;
    this.shownAt = snapshot.at;
    this.show(snapshot);
  }

  /** Starts following whether the tab is shown (once it is in the sidebar). */
  attach(): void {
    this.observer = new MutationObserver(() => this.check());
    const wrapper = this.content.parent()[0];
    if (wrapper) this.observer.observe(wrapper, { attributes: true, attributeFilter: ['style'] });
    const main = document.getElementById('red-ui-main-container');
    if (main) this.observer.observe(main, { attributes: true, attributeFilter: ['class'] });
    document.addEventListener('visibilitychange', this.visibilityChanged);
    this.check();
  }

  /** Stops everything: the tab or the package is gone. */
  detach(): void {
    this.observer?.disconnect();
    document.removeEventListener('visibilitychange', this.visibilityChanged);
    this.stop();
  }

  /** Whether the user can see the tab now. */
  private isShown(): boolean {
    return this.content.is(':visible') && document.visibilityState === 'visible';
  }

  /** Starts or stops watching, as the tab is shown or not. */
  check(): void {
    if (this.isShown() === (this.renewal !== undefined)) return;
    if (this.renewal === undefined) this.start();
    else this.stop();
  }

  private start(): void {
    RED.comms.subscribe(MONITOR_TOPIC, this.receive);
    this.renewal = setInterval(() => void this.watch(), WATCH_RENEW_MS);
    void this.watch();
    void this.firstPaint();
  }

  private stop(): void {
    if (this.renewal === undefined) return;
    clearInterval(this.renewal);
    this.renewal = undefined;
    RED.comms.unsubscribe(MONITOR_TOPIC, this.receive);
  }

  /** A failure of the lease is told once, not every WATCH_RENEW_MS, until a renewal succeeds again. */
  private watchFailing = false;

  private async watch(): Promise<void> {
    const answer = await monitorRequest('POST', 'watch', t('sidebar.feed.watch'), {
      quiet: this.watchFailing,
    });
    const recovered = this.watchFailing && answer !== failed;
    this.watchFailing = answer === failed;
    if (recovered) void this.firstPaint();
  }

  /** The snapshot now, rather than at the runtime's next sample. */
  private async firstPaint(): Promise<void> {
    const snapshot = await monitorRequest<MonitorSnapshot>('GET', 'snapshot', t('sidebar.feed.snapshot'));
    if (snapshot !== failed && snapshot) this.present(snapshot);
  }
}
