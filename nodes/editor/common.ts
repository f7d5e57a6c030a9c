/**
 * What the dialogs share: their messages, the open dialog their validators read, the checks of
 * settings, and the widgets several dialogs build the same way.
 */
import { readNumber } from '../lib/config-values.js';
import { publishTopicProblem } from '../lib/topic.js';
import dialogStyles from './dialogs.css';
import type { EditorNode, NodeDefinition, NodeOf } from './editor-api.js';

/**
 * The namespace of the package's catalog in Node-RED: the id of the plugin package.json declares
 * ("durable-mqtt"), whose catalog holds every text of every dialog. Every key names it: the editor
 * looks a key without a namespace up in its own catalog (in a template, in that of the node's file,
 * which has none).
 */
const CATALOG_NAMESPACE = 'node-red-contrib-durable-mqtt/durable-mqtt';

export type Translate = (key: string, substitutions?: Record<string, unknown>) => string;

/** A text of the package's catalog, by its key below `durable-mqtt.`, in the editor's language. */
export const t: Translate = (key, substitutions) =>
  RED._(`${CATALOG_NAMESPACE}:durable-mqtt.${key}`, substitutions);

/** The default registerType gives t(): what t() returns while the catalog is not in the editor. */
const NOT_LOADED = '\u0000';

/**
 * Registers a node type once the package's catalog is in the editor. When the editor starts, it
 * loads the plugins' catalogs before any node's definition, and this registers at once. When the
 * package is installed from the palette manager, the editor fetches the plugin's catalog and the
 * nodes' definitions by separate requests, which may come back in either order: a definition that
 * comes first fetches the catalog itself, as the editor does, and registers when it is there.
 */
export function registerType<Properties>(type: string, definition: NodeDefinition<Properties>): void {
  whenCatalogLoaded(() => RED.nodes.registerType(type, definition));
}

/** Calls `ready` once the package's catalog is in the editor: now, or once fetched (see registerType). */
export function whenCatalogLoaded(ready: () => void): void {
  if (t('status.connected', { defaultValue: NOT_LOADED }) !== NOT_LOADED) ready();
  else RED.i18n.loadNodeCatalog(CATALOG_NAMESPACE, ready);
}

/** Puts the dialogs' style sheet (dialogs.css) into the editor's page, once for all node types. */
export function addDialogStyles(): void {
  const id = 'durable-mqtt-dialog-styles';
  if (document.getElementById(id)) return;
  const style = document.createElement('style');
  style.id = id;
  style.textContent = dialogStyles;
  document.head.appendChild(style);
}

/**
 * The node whose dialog is open. Node-RED validates a node while its dialog is open, against
 * the form, and when it is not, against the saved values: a check that depends on another
 * property reads that property from where it is.
 */
export class OpenDialog<Properties> {
  private node: EditorNode | undefined;

  /** `prefix`: of the form's field ids, "node-input" for a flow node, "node-config-input" for a config node. */
  constructor(private readonly prefix: 'node-input' | 'node-config-input') {}

  open(node: EditorNode): void {
    this.node = node;
  }

  close(): void {
    this.node = undefined;
  }

  /** The property as its field shows it while `node`'s dialog is open, as saved otherwise. */
  value(node: NodeOf<Properties>, name: keyof Properties & string): unknown {
    if (node === this.node) {
      const field = $(`#${this.prefix}-${name}`);
      if (field.length) return field.is(':checkbox') ? field.prop('checked') : field.val();
    }
    return node[name];
  }
}

/** Whether `value` is one of `allowed`. */
export function isOneOf<Choice extends string>(value: unknown, allowed: readonly Choice[]): value is Choice {
  return (allowed as readonly unknown[]).includes(value);
}

/** `value` when it is one of `allowed`, else `fallback`: what a dialog shows for a setting it does not know. */
export function oneOf<Choice extends string>(
  value: unknown,
  allowed: readonly Choice[],
  fallback: Choice,
): Choice {
  return isOneOf(value, allowed) ? value : fallback;
}

/** A setting as text, trimmed as the runtime reads it; empty when the flow has none. */
export function settingText(value: unknown): string {
  return value === undefined || value === null ? '' : String(value).trim();
}

/** Whether `value` is a whole number from `low` to `high`, in digits only (no sign, point or exponent). */
export function isWholeNumber(value: unknown, low: number, high: number): boolean {
  const text = settingText(value);
  return /^\d+$/.test(text) && Number(text) >= low && Number(text) <= high;
}

/** Whether the runtime (lib/config-values' readNumber) reads `value` as a whole number from `low` to `high`. */
export function readsAsWholeNumber(value: unknown, low: number, high: number): boolean {
  const number = readNumber(value, NaN);
  return Number.isInteger(number) && number >= low && number <= high;
}

/**
 * A validator's answer for a topic to publish to: the runtime's own check (lib/topic.ts), translated.
 * `message`: the key of the text that gives the reason.
 */
export function publishTopicVerdict(
  t: Translate,
  topic: string,
  message = 'validation.publish-topic',
): true | string {
  const problem = publishTopicProblem(topic);
  return !problem || t(message, { reason: t(`topic-problem.${problem}`) });
}

/** Shows `rows` (a selector) while `shown()` holds: now, and after each of `events` on `control`. */
export function showWhile(rows: string, control: JQuery, shown: () => boolean, events = 'change'): void {
  const update = () => void $(rows).toggle(shown());
  control.on(events, update);
  update();
}

/**
 * The tabs of a dialog: `tabsId` the list that becomes the tab bar, `contentId` the element
 * whose children are the panes, shown one at a time; each tab names its pane's id.
 */
export function createTabs(tabsId: string, contentId: string, tabs: { id: string; label: string }[]): void {
  const bar = RED.tabs.create({
    id: tabsId,
    onchange(tab) {
      $(`#${contentId}`).children().hide();
      $(`#${tab.id}`).show();
    },
  });
  for (const tab of tabs) bar.addTab(tab);
  // The tray is still being laid out: measure the tabs once it has been.
  setTimeout(() => bar.resize(), 0);
}

/** The widest a canvas label's text may be, in pixels, as the canvas measures it. */
const LABEL_WIDTH = 190;

/** The most trailing levels of a long topic tried whole, before cutting in the middle of one. */
const MAX_LEVELS_TRIED = 20;

/**
 * `text` (a topic, most often) short enough for a canvas label: as it is when it fits, otherwise
 * its first level and as many of its last levels (those that tell topics apart) as fit, around an
 * ellipsis; failing that, its start and its end. Measured as the canvas draws labels, so wide
 * letters count for what they take.
 */
export function fitLabel(text: string): string {
  const width = (candidate: string) => RED.view.calculateTextWidth(candidate, 'red-ui-flow-node-label');
  if (width(text) <= LABEL_WIDTH) return text;
  const levels = text.split('/');
  for (let kept = Math.min(levels.length - 2, MAX_LEVELS_TRIED); kept >= 1; kept--) {
    const candidate = [levels[0], '…', ...levels.slice(levels.length - kept)].join('/');
    if (width(candidate) <= LABEL_WIDTH) return candidate;
  }
  const characters = Array.from(text); // code points: an emoji is not cut in half
  const shortened = (kept: number) => {
    const head = Math.ceil(kept / 3);
    return `${characters.slice(0, head).join('')}…${characters.slice(characters.length - (kept - head)).join('')}`;
  };
  // The most characters kept that fit: the width grows with the characters kept.
  let fits = 0;
  let tooWide = characters.length;
  while (tooWide - fits > 1) {
    const kept = Math.floor((fits + tooWide) / 2);
    if (width(shortened(kept)) <= LABEL_WIDTH) fits = kept;
    else tooWide = kept;
  }
  return shortened(fits);
}

/**
 * A section that folds: its header (`.red-ui-palette-header`, with a twistie) shows or hides its
 * `.section-content`. It starts folded, so that a dialog's first screen holds only the main settings.
 */
export function foldingSection(section: string): void {
  const header = $(`${section} > .red-ui-palette-header`);
  const twistie = header.find('i');
  const content = $(`${section} > .section-content`);
  const unfold = (unfolded: boolean) => {
    twistie.toggleClass('expanded', unfolded);
    content.toggle(unfolded);
  };
  header.on('click', (event) => {
    event.preventDefault();
    unfold(!twistie.hasClass('expanded'));
  });
  unfold(false);
}

/** Whether the broker config `id` connects with MQTT 5. */
export function usesMqtt5(id: unknown): boolean {
  const config = typeof id === 'string' ? RED.nodes.node(id) : null;
  return String((config as { protocolVersion?: unknown } | null)?.protocolVersion) === '5';
}
