/** An entry in the map's list, from oldest to newest. */
interface Node<V> {
  key: string;
  value: V;
  older: Node<V> | undefined;
  newer: Node<V> | undefined;
}

/**
 * A Map that keeps its keys in the order they were last set, oldest first, so
 * that the oldest one (the next to evict or to expire) is found in O(1). A
 * linked list rather than the Map's own insertion order, as in dedupe's
 * SeenCache: V8 leaves deleted Map entries as holes that every new iterator
 * walks past, which made "the oldest key" cost O(size) after many deletions.
 */
export class RecencyMap<V> {
  private readonly nodes = new Map<string, Node<V>>();
  private oldestNode: Node<V> | undefined;
  private newestNode: Node<V> | undefined;

  get size(): number {
    return this.nodes.size;
  }

  get(key: string): V | undefined {
    return this.nodes.get(key)?.value;
  }

  /** Sets the value of `key` and makes it the newest key. */
  setNewest(key: string, value: V): void {
    let node = this.nodes.get(key);
    if (node) {
      this.unlink(node);
      node.value = value;
    } else {
      node = { key, value, older: undefined, newer: undefined };
      this.nodes.set(key, node);
    }
    this.append(node);
  }

  delete(key: string): boolean {
    const node = this.nodes.get(key);
    if (!node) return false;
    this.nodes.delete(key);
    this.unlink(node);
    return true;
  }

  /** The oldest key with its value. */
  oldest(): [string, V] | undefined {
    return this.oldestNode && [this.oldestNode.key, this.oldestNode.value];
  }

  /** Every key with its value, oldest first. */
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    for (let node = this.oldestNode; node; node = node.newer) yield [node.key, node.value];
  }

  private append(node: Node<V>): void {
    node.older = this.newestNode;
    node.newer = undefined;
    if (this.newestNode) this.newestNode.newer = node;
    else this.oldestNode = node;
    this.newestNode = node;
  }

  private unlink(node: Node<V>): void {
    if (node.older) node.older.newer = node.newer;
    else this.oldestNode = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.newestNode = node.older;
    node.older = node.newer = undefined;
  }
}
