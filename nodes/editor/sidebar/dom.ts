/**
 * Building blocks of the sidebar's views: sections that fold, lists and tables updated in place
 * (a snapshot comes every second: rebuilding them would close what the user opened and move what
 * the pointer is on), links that reveal a node, and the formats of numbers, sizes and durations.
 */
import { t } from '../common.js';

/** A new element of `tag` with `className` and, when given, `text` (always as text, never HTML). */
export function element(tag: string, className = '', text?: string): JQuery {
  const created = $(`<${tag}>`);
  if (className) created.addClass(className);
  if (text !== undefined) created.text(text);
  return created;
}

/** Sets an element's text when it differs, so that a selection in it survives the next snapshot. */
export function setText(target: JQuery, text: string): void {
  if (target.text() !== text) target.text(text);
}

/**
 * Keeps one child of `container` per item, in the items' order, each found again by `key`:
 * `create` makes the child of a new key, `update` brings every child up to date with its item.
 */
export function syncChildren<Item>(
  container: JQuery,
  items: readonly Item[],
  key: (item: Item) => string,
  create: (item: Item) => JQuery,
  update: (child: JQuery, item: Item) => void,
): void {
  const parent = container[0];
  const existing = new Map<string, HTMLElement>();
  for (const child of Array.from(parent.children) as HTMLElement[])
    existing.set(child.dataset.key ?? '', child);
  let previous: HTMLElement | null = null;
  for (const item of items) {
    const itemKey = key(item);
    let child = existing.get(itemKey);
    if (child) existing.delete(itemKey);
    else {
      child = create(item)[0];
      child.dataset.key = itemKey;
    }
    update($(child), item);
    const expected: ChildNode | null = previous ? previous.nextSibling : parent.firstChild;
    if (child !== expected) parent.insertBefore(child, expected);
    previous = child;
  }
  for (const child of existing.values()) child.remove();
}

export interface FoldingSection {
  root: JQuery;
  body: JQuery;
  /** The title's count, after the title ("Clients (2)"). */
  setCount(count: number): void;
}

/**
 * A section whose header folds its body: a top-level one looks like the palette's and the
 * configuration sidebar's headers, a nested one is a lighter line. `onOpen` runs at each opening.
 */
export function foldingSection(
  title: string,
  options: { nested?: boolean; open?: boolean; onOpen?: () => void } = {},
): FoldingSection {
  const root = element(
    'div',
    options.nested ? 'durable-mqtt-sidebar-subsection' : 'durable-mqtt-sidebar-section',
  );
  const header = element(
    'div',
    options.nested ? 'durable-mqtt-sidebar-subheader' : 'red-ui-palette-header durable-mqtt-sidebar-header',
  ).appendTo(root);
  const twistie = element('i', 'fa fa-angle-down').appendTo(header);
  element('span', 'durable-mqtt-sidebar-title', title).appendTo(header);
  const countLabel = element('span', 'durable-mqtt-sidebar-count').appendTo(header);
  const body = element('div', 'durable-mqtt-sidebar-body').appendTo(root);
  const unfold = (open: boolean) => {
    twistie.toggleClass('expanded', open);
    root.toggleClass('durable-mqtt-sidebar-open', open);
    body.toggle(open);
    if (open) options.onOpen?.();
  };
  header.on('click', (event) => {
    event.preventDefault();
    unfold(!twistie.hasClass('expanded'));
  });
  unfold(options.open ?? true);
  return { root, body, setCount: (n) => setText(countLabel, ` (${n.toLocaleString()})`) };
}

/** A compact table with a header row of `columns`; its rows go in the returned body. */
export function compactTable(columns: string[]): { table: JQuery; rows: JQuery } {
  const table = element('table', 'durable-mqtt-sidebar-table');
  const head = element('tr').appendTo(element('thead').appendTo(table));
  for (const column of columns) element('th', '', column).appendTo(head);
  return { table, rows: element('tbody').appendTo(table) };
}

/** A table row of `count` cells. */
export function tableRow(count: number): JQuery {
  const row = element('tr');
  for (let index = 0; index < count; index++) element('td').appendTo(row);
  return row;
}

/** Sets the text of a row's cells, in order (a cell given as undefined keeps what it holds). */
export function setCells(row: JQuery, texts: (string | undefined)[]): void {
  const cells = row.children('td');
  texts.forEach((text, index) => {
    if (text !== undefined) setText(cells.eq(index), text);
  });
}

/** The label the editor gives node `id`, or `name` when the editor does not have it (not deployed yet). */
export function nodeLabel(id: string, name: string): string {
  const node = RED.nodes.node(id);
  return node ? RED.utils.getNodeLabel(node, name || id) : name || id;
}

/** Makes `target` reveal node `id` on the canvas when clicked (a click on a button in it does not). */
export function revealsNode(target: JQuery, id: string): JQuery {
  target.addClass('durable-mqtt-sidebar-reveal').attr('data-node-id', id);
  target.attr('title', t('sidebar.reveal'));
  target.on('click', (event) => {
    if ($(event.target).closest('button').length) return;
    if (RED.nodes.node(id)) RED.view.reveal(id);
  });
  return target;
}

/** A small button of the editor's style that runs `action`; `tip`, when given, is its tooltip. */
export function smallButton(label: string, icon: string, action: () => void, tip?: string): JQuery {
  const button = element('button', 'red-ui-button red-ui-button-small durable-mqtt-sidebar-button');
  if (tip) RED.popover.tooltip(button, tip);
  element('i', `fa ${icon}`).appendTo(button);
  element('span', '', ` ${label}`).appendTo(button);
  return button.on('click', (event) => {
    event.stopPropagation();
    action();
  });
}

/** A whole number as the user's locale writes it. */
export const count = (value: number): string => value.toLocaleString();

/** A rate (messages per second) with one decimal. */
export const rate = (value: number): string =>
  t('sidebar.units.per-second', { rate: value.toLocaleString(undefined, { maximumFractionDigits: 1 }) });

const KIB = 1024;

/** A size in bytes, kB or MB. */
export function bytes(value: number): string {
  const figure = (n: number) => n.toLocaleString(undefined, { maximumFractionDigits: 1 });
  if (value < KIB) return t('sidebar.units.bytes', { size: figure(value) });
  if (value < KIB * KIB) return t('sidebar.units.kilobytes', { size: figure(value / KIB) });
  return t('sidebar.units.megabytes', { size: figure(value / KIB / KIB) });
}

/** A duration in seconds: "42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function duration(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return t('sidebar.units.seconds', { seconds: whole });
  if (whole < 3600)
    return t('sidebar.units.minutes', { minutes: Math.floor(whole / 60), seconds: whole % 60 });
  if (whole < 86400)
    return t('sidebar.units.hours', {
      hours: Math.floor(whole / 3600),
      minutes: Math.floor(whole / 60) % 60,
    });
  return t('sidebar.units.days', { days: Math.floor(whole / 86400), hours: Math.floor(whole / 3600) % 24 });
}

/** How long ago `since` (ms since the epoch) was at `now`, the date itself in the title. */
export function setSince(target: JQuery, since: number, now: number): void {
  setText(target, duration((now - since) / 1000));
  target.attr('title', new Date(since).toLocaleString());
}
