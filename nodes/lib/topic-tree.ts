import { parseSharedFilter } from './topic.js';

interface TreeNode<V> {
  children: Map<string, TreeNode<V>>;
  /** Values whose filter ends exactly at this level. */
  values: Set<V>;
  /** Values whose filter ends with `#` below this level. */
  hashValues: Set<V>;
}

function newNode<V>(): TreeNode<V> {
  return { children: new Map(), values: new Set(), hashValues: new Set() };
}

/**
 * Subscriptions indexed by filter level, so one incoming topic is matched
 * against every filter in one walk (no RegExp, no scan of all filters).
 * A `$share/group/` prefix is stripped: the broker delivers shared messages
 * under their real topic.
 */
export class TopicTree<V> {
  private readonly root: TreeNode<V> = newNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(filter: string, value: V): void {
    const levels = this.levelsOf(filter);
    let node = this.root;
    const last = levels.length - 1;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i];
      if (level === '#' && i === last) {
        if (!node.hashValues.has(value)) this.count++;
        node.hashValues.add(value);
        return;
      }
      let child = node.children.get(level);
      if (!child) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (!node.values.has(value)) this.count++;
    node.values.add(value);
  }

  remove(filter: string, value: V): void {
    const levels = this.levelsOf(filter);
    const path: TreeNode<V>[] = [this.root];
    let node = this.root;
    const last = levels.length - 1;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i];
      if (level === '#' && i === last) {
        if (node.hashValues.delete(value)) this.count--;
        this.prune(path, levels);
        return;
      }
      const child = node.children.get(level);
      if (!child) return;
      node = child;
      path.push(node);
    }
    if (node.values.delete(value)) this.count--;
    this.prune(path, levels);
  }

  /** Calls `visit` for each value whose filter matches `topic`; a value under two matching filters is visited twice. */
  match(topic: string, visit: (value: V) => void): void {
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] wildcards at the first level do not match topics starting with '$'.
    const dollar = topic.charCodeAt(0) === 36;
    this.walk(this.root, levels, 0, dollar, visit);
  }

  private walk(
    node: TreeNode<V>,
    levels: string[],
    depth: number,
    dollar: boolean,
    visit: (value: V) => void,
  ) {
    const wildcardsAllowed = !(dollar && depth === 0);
    // '#' also matches the parent level itself ('a/#' matches 'a').
    if (wildcardsAllowed) for (const value of node.hashValues) visit(value);
    if (depth === levels.length) {
      for (const value of node.values) visit(value);
      return;
    }
    const exact = node.children.get(levels[depth]);
    if (exact) this.walk(exact, levels, depth + 1, dollar, visit);
    if (wildcardsAllowed) {
      const plus = node.children.get('+');
      if (plus) this.walk(plus, levels, depth + 1, dollar, visit);
    }
  }

  private levelsOf(filter: string): string[] {
    const shared = parseSharedFilter(filter);
    return (shared ? shared.filter : filter).split('/');
  }

  private prune(path: TreeNode<V>[], levels: string[]) {
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i];
      if (node.values.size || node.hashValues.size || node.children.size) return;
      path[i - 1].children.delete(levels[i - 1]);
    }
  }
}
