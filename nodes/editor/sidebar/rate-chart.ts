/** An embedded broker's PUBLISH rates in and out over the last minutes, as a small SVG chart. */
import { RATE_HISTORY, SAMPLE_INTERVAL_MS, type BrokerView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import { element, rate, setText } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The chart's drawing units; the SVG scales to the sidebar's width. */
const WIDTH = 300;
const HEIGHT = 60;
/** The fewest samples the chart spans: the first minute of a watch is not squeezed into the right edge. */
const MIN_SPAN = Math.round(60_000 / SAMPLE_INTERVAL_MS);

function svgElement(tag: string, attributes: Record<string, string>): SVGElement {
  const created = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) created.setAttribute(name, value);
  return created;
}

/** A polyline's points for `values` over `span` samples, the newest at the right edge, `top` at the top. */
function points(values: number[], span: number, top: number): string {
  const step = WIDTH / (span - 1);
  const start = WIDTH - (values.length - 1) * step;
  const y = (value: number) => HEIGHT - (value / top) * HEIGHT;
  return values
    .map((value, index) => `${(start + index * step).toFixed(1)},${y(value).toFixed(1)}`)
    .join(' ');
}

/** The smallest of 1, 2, 5 × 10ⁿ at or above `value`: a scale whose top reads well. */
function niceTop(value: number): number {
  if (value <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const factor of [1, 2, 5, 10]) if (value <= factor * magnitude) return factor * magnitude;
  return 10 * magnitude;
}

export class RateChart {
  readonly root = element('div', 'durable-mqtt-sidebar-chart');
  private readonly svg = svgElement('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
  });
  private readonly incoming = svgElement('polyline', { class: 'durable-mqtt-sidebar-line-in', points: '' });
  private readonly outgoing = svgElement('polyline', { class: 'durable-mqtt-sidebar-line-out', points: '' });
  private readonly title = element('span');
  private readonly scale = element('span', 'durable-mqtt-sidebar-chart-scale');
  private readonly inNow = element('span', 'durable-mqtt-sidebar-rate-in');
  private readonly outNow = element('span', 'durable-mqtt-sidebar-rate-out');

  constructor() {
    this.svg.append(
      svgElement('line', { x1: '0', y1: String(HEIGHT), x2: String(WIDTH), y2: String(HEIGHT) }),
      this.incoming,
      this.outgoing,
    );
    element('div', 'durable-mqtt-sidebar-chart-title').append(this.title, this.scale).appendTo(this.root);
    this.root.append(this.svg);
    element('div', 'durable-mqtt-sidebar-chart-legend')
      .append(
        element('span', 'durable-mqtt-sidebar-key-in', t('sidebar.broker.rate-in')),
        ' ',
        this.inNow,
        ' ',
      )
      .append(element('span', 'durable-mqtt-sidebar-key-out', t('sidebar.broker.rate-out')), ' ', this.outNow)
      .appendTo(this.root);
  }

  update(rates: BrokerView['rates']): void {
    const recent = rates.slice(-RATE_HISTORY);
    // One minute at first, growing with the history up to its five: what there is fills the chart.
    const span = Math.max(MIN_SPAN, recent.length);
    const title = t('sidebar.broker.rates', { minutes: Math.ceil((span * SAMPLE_INTERVAL_MS) / 60_000) });
    setText(this.title, title);
    this.svg.setAttribute('aria-label', title);
    // Room above the highest rate, so that its line stays clear of the top edge.
    const highest = Math.max(0, ...recent.map((sample) => Math.max(sample.in, sample.out)));
    const top = niceTop(1.1 * highest);
    this.incoming.setAttribute(
      'points',
      points(
        recent.map((sample) => sample.in),
        span,
        top,
      ),
    );
    this.outgoing.setAttribute(
      'points',
      points(
        recent.map((sample) => sample.out),
        span,
        top,
      ),
    );
    setText(this.scale, t('sidebar.broker.scale', { top: rate(top) }));
    const last = recent[recent.length - 1];
    setText(this.inNow, rate(last?.in ?? 0));
    setText(this.outNow, rate(last?.out ?? 0));
  }
}
