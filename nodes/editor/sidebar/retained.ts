/**
 * An embedded broker's retained messages as a tree of topic levels, fetched from the `retained`
 * route when opened; a branch of a listing that was cut at RETAINED_LIST_LIMIT is fetched on its
 * own when opened. A message shows its payload's preview (when the answer has one) and can be
 * deleted, after a confirmation.
 */
import {
  RETAINED_LIST_LIMIT,
  type RetainedListing,
  type RetainedMessageView,
} from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import { bytes, count, element, smallButton } from './dom.js';
import { confirmAction, failed, mayAct, monitorRequest } from './requests.js';

/** A topic level: the message retained on its topic, if any, and the levels below it. */
interface Level {
  name: string;
  topic: string;
  message?: RetainedMessageView;
  children: Map<string, Level>;
  /** Messages at and below this level. */
  total: number;
}

function buildTree(messages: readonly RetainedMessageView[]): Level {
  const root: Level = { name: '', topic: '', children: new Map(), total: 0 };
  for (const message of messages) {
    let level = root;
    level.total++;
    message.topic.split('/').forEach((name, index, names) => {
      const topic = names.slice(0, index + 1).join('/');
      let child = level.children.get(name);
      if (!child) level.children.set(name, (child = { name, topic, children: new Map(), total: 0 }));
      child.total++;
      level = child;
    });
    level.message = message;
  }
  return root;
}

/** Whether `topic` is `branch` or below it. */
const isUnder = (topic: string, branch: string) => topic === branch || topic.startsWith(`${branch}/`);

/** A preview's text as shown: JSON indented when it is whole. */
function previewText(preview: NonNullable<RetainedMessageView['preview']>): string {
  if (preview.kind !== 'json' || preview.truncated) return preview.text;
  try {
    return JSON.stringify(JSON.parse(preview.text), null, 2);
  } catch {
    return preview.text;
  }
}

export class RetainedBrowser {
  readonly root = element('div', 'durable-mqtt-sidebar-retained');
  private readonly notice = element('div', 'durable-mqtt-sidebar-note');
  private readonly tree = element('div', 'durable-mqtt-sidebar-tree');
  private messages: RetainedMessageView[] = [];
  /** Branches ('' for all) whose last listing was whole: opening what is below them fetches nothing. */
  private readonly complete = new Set<string>();
  /** Topics of the open branches, kept across each new listing. */
  private readonly open = new Set<string>();
  private loaded = false;

  constructor(private readonly brokerId: string) {
    const toolbar = element('div', 'durable-mqtt-sidebar-toolbar').appendTo(this.root);
    smallButton(t('sidebar.action.refresh'), 'fa-refresh', () => void this.load()).appendTo(toolbar);
    this.root.append(this.notice, this.tree);
  }

  /** Fetches the listing when the section opens the first time; later openings keep what it shows. */
  opened(): void {
    if (!this.loaded) void this.load();
  }

  /** Fetches the whole listing again, every branch with it. */
  async load(): Promise<void> {
    this.loaded = true;
    this.complete.clear();
    await this.fetch('');
  }

  /** Fetches the messages at and below `branch` ('' for all) and shows them in place of those it had. */
  private async fetch(branch: string): Promise<void> {
    const answer = await monitorRequest<RetainedListing>('GET', 'retained', t('sidebar.retained.list'), {
      id: this.brokerId,
      query: { topic: branch ? `${branch}/#` : '#' },
    });
    if (answer === failed || answer === undefined) return;
    this.messages = [
      ...this.messages.filter((message) => branch !== '' && !isUnder(message.topic, branch)),
      ...answer.messages,
    ].sort((a, b) => a.topic.localeCompare(b.topic));
    if (!answer.truncated) this.complete.add(branch);
    this.render();
  }

  private isComplete(topic: string): boolean {
    const levels = topic.split('/');
    for (let depth = 0; depth <= levels.length; depth++)
      if (this.complete.has(levels.slice(0, depth).join('/'))) return true;
    return false;
  }

  private render(): void {
    const root = buildTree(this.messages);
    this.notice
      .text(
        this.complete.has('')
          ? t('sidebar.retained.total', { count: count(root.total) })
          : t('sidebar.retained.truncated', { limit: count(RETAINED_LIST_LIMIT) }),
      )
      .toggle(true);
    this.tree.empty();
    if (root.total === 0)
      element('div', 'durable-mqtt-sidebar-empty', t('sidebar.retained.none')).appendTo(this.tree);
    for (const level of root.children.values()) this.tree.append(this.levelElement(level));
  }

  private levelElement(level: Level): JQuery {
    const item = element('div', 'durable-mqtt-sidebar-topic').attr('data-topic', level.topic);
    const row = element('div', 'durable-mqtt-sidebar-topic-row').appendTo(item);
    const hasChildren = level.children.size > 0;
    const twistie = element('i', `fa ${hasChildren ? 'fa-caret-right' : 'fa-circle-o'}`).appendTo(row);
    element(
      'span',
      'durable-mqtt-sidebar-topic-name',
      level.name || t('sidebar.retained.empty-level'),
    ).appendTo(row);
    if (hasChildren) element('span', 'durable-mqtt-sidebar-count', ` (${count(level.total)})`).appendTo(row);
    if (level.message)
      element(
        'span',
        'durable-mqtt-sidebar-topic-size',
        t('sidebar.retained.size', { qos: level.message.qos, size: bytes(level.message.bytes) }),
      ).appendTo(row);
    const below = element('div', 'durable-mqtt-sidebar-topic-below').appendTo(item);
    const show = (open: boolean) => {
      if (open) this.open.add(level.topic);
      else this.open.delete(level.topic);
      twistie
        .toggleClass('fa-caret-right', hasChildren && !open)
        .toggleClass('fa-caret-down', hasChildren && open);
      below.empty().toggle(open);
      if (!open) return;
      if (level.message) below.append(this.messageElement(level.message));
      for (const child of level.children.values()) below.append(this.levelElement(child));
    };
    row.on('click', () => {
      const opening = !this.open.has(level.topic);
      // A branch the last listing may have cut short is listed on its own first.
      if (opening && hasChildren && !this.isComplete(level.topic)) {
        this.open.add(level.topic);
        void this.fetch(level.topic);
      } else show(opening);
    });
    show(this.open.has(level.topic));
    return item;
  }

  private messageElement(message: RetainedMessageView): JQuery {
    const box = element('div', 'durable-mqtt-sidebar-message');
    const meta = element('div', 'durable-mqtt-sidebar-message-meta').appendTo(box);
    element(
      'span',
      '',
      t('sidebar.retained.size', { qos: message.qos, size: bytes(message.bytes) }),
    ).appendTo(meta);
    if (message.preview) {
      element(
        'span',
        'durable-mqtt-sidebar-kind',
        t(`sidebar.retained.kind.${message.preview.kind}`),
      ).appendTo(meta);
      element('pre', 'durable-mqtt-sidebar-preview', previewText(message.preview)).appendTo(box);
      if (message.preview.truncated)
        element('div', 'durable-mqtt-sidebar-note', t('sidebar.retained.preview-truncated')).appendTo(box);
    } else if (message.bytes > 0 && !mayAct()) {
      element('div', 'durable-mqtt-sidebar-note', t('sidebar.retained.no-preview')).appendTo(box);
    }
    if (mayAct())
      smallButton(t('sidebar.action.delete'), 'fa-trash', () => this.delete(message.topic)).appendTo(meta);
    return box;
  }

  private delete(topic: string): void {
    confirmAction(t('sidebar.retained.confirm-delete', { topic }), t('sidebar.action.delete'), async () => {
      const answer = await monitorRequest('DELETE', 'deleteRetained', t('sidebar.retained.delete'), {
        id: this.brokerId,
        query: { topic },
      });
      if (answer === failed) return;
      this.messages = this.messages.filter((message) => message.topic !== topic);
      this.render();
    });
  }
}
