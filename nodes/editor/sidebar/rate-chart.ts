/** An embedded broker's PUBLISH rates in and out over the last minutes, as a small SVG chart. */
import { RATE_HISTORY, SAMPLE_INTERVAL_MS, type BrokerView } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import { element, rate, setText } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The chart's drawing units; the SVG scales to the sidebar's width. */
const WIDTH = 300;
const HEIGHT = 60;

function svgElement(tag: string, attributes: Record<string, string>): SVGElement {
  const created = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) created.setAttribute(name, value);
  return created;
}

/** The points of a polyline for `values`, the newest at the right edge, `top` at the chart's top. */
function points(values: number[], top: number): string {
  const step = WIDTH / (RATE_HISTORY - 1);
  const start = WIDTH - (values.length - 1) * step;
  return values
    .map(
      (value, index) =>
        `${(start + index * step).toFixed(1)},${(HEIGHT - (value / top) * HEIGHT).toFixed(1)}`,
    )
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
  private readonly incoming: SVGElement;
  private readonly outgoing: SVGElement;
  private readonly scale = element('span', 'durable-mqtt-sidebar-chart-scale');
  private readonly legend = element('div', 'durable-mqtt-sidebar-chart-legend');
  private readonly inNow = element('span', 'durable-mqtt-sidebar-rate-in');
  private readonly outNow = element('span', 'durable-mqtt-sidebar-rate-out');

  constructor() {
    const minutes = Math.round((RATE_HISTORY * SAMPLE_INTERVAL_MS) / 60_000);
    const svg = svgElement('svg', {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': t('sidebar.broker.rates', { minutes }),
    });
    svg.appendChild(
      svgElement('line', { x1: '0', y1: String(HEIGHT), x2: String(WIDTH), y2: String(HEIGHT) }),
    );
    this.incoming = svg.appendChild(
      svgElement('polyline', { class: 'durable-mqtt-sidebar-line-in', points: '' }),
    );
    this.outgoing = svg.appendChild(
      svgElement('polyline', { class: 'durable-mqtt-sidebar-line-out', points: '' }),
    );
    element('div', 'durable-mqtt-sidebar-chart-title', t('sidebar.broker.rates', { minutes }))
      .append(this.scale)
      .appendTo(this.root);
    this.root.append(svg);
    this.legend
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
    const top = niceTop(Math.max(0, ...recent.map((sample) => Math.max(sample.in, sample.out))));
    this.incoming.setAttribute(
      'points',
      points(
        recent.map((sample) => sample.in),
        top,
      ),
    );
    this.outgoing.setAttribute(
      'points',
      points(
        recent.map((sample) => sample.out),
        top,
      ),
    );
    setText(this.scale, t('sidebar.broker.scale', { top: rate(top) }));
    const last = recent[recent.length - 1];
    setText(this.inNow, rate(last?.in ?? 0));
    setText(this.outNow, rate(last?.out ?? 0));
  }
}
