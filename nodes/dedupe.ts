import { existsSync } from 'node:fs';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { Deduplicator } from './lib/dedupe/deduplicator.js';
import { flowCompletion } from './lib/completion-tracker.js';
import { LevelSeenStore } from './lib/dedupe/level-seen-store.js';
import {
  KEY_KINDS,
  KEY_SCOPES,
  MissingKeyError,
  keyFunction,
  type KeyKind,
  type KeyScope,
  type KeyedMessage,
} from './lib/dedupe/message-key.js';
import { readBoolean, readNumber, readString } from './lib/config-values.js';
import { failAllInput, failedStatus, throttledStatus, workingStatus } from './node-red/status.js';
import { translator } from './node-red/i18n.js';
import { nodeDataDirectory } from './node-red/data-directory.js';
import { reportDedupe } from './node-red/monitor/registry.js';
import { serveAdminRoutes } from './node-red/monitor/serve.js';

interface DedupeDef extends NodeDef {
  key: KeyKind;
  /** With key 'property': a msg property path, e.g. payload.seq. */
  property?: string;
  scope: KeyScope;
  /** Seconds a key is remembered after its latest copy; 0: no time limit. */
  window: string | number;
  maxEntries: string | number;
  persist?: boolean | string;
}

/** Above this, the cache alone would take hundreds of MB: surely a typing mistake. */
const MAX_ENTRIES_LIMIT = 10_000_000;

interface DedupeMessage extends KeyedMessage {
  reset?: unknown;
  duplicateOf?: { firstSeenAt: number; count: number };
}

module.exports = function (RED: NodeAPI) {
  const t = translator(RED);

  /** The node's settings, or the text of what is wrong with them. */
  function readSettings(def: DedupeDef) {
    const kind = def.key || 'auto';
    const scope = def.scope || 'global';
    const property = readString(def.property).trim();
    const windowSeconds = readNumber(def.window, NaN);
    const maxEntries = readNumber(def.maxEntries, NaN);
    if (!KEY_KINDS.includes(kind)) return { problem: t('errors.dedupe-key', { key: kind }) };
    if (!KEY_SCOPES.includes(scope)) return { problem: t('errors.dedupe-scope', { scope }) };
    if (kind === 'property' && !property) return { problem: t('errors.dedupe-no-property') };
    if (kind === 'property') {
      try {
        RED.util.normalisePropertyExpression(property);
      } catch {
        return { problem: t('errors.dedupe-bad-property', { property }) };
      }
    }
    if (!(windowSeconds >= 0)) return { problem: t('errors.dedupe-window', { window: String(def.window) }) };
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_ENTRIES_LIMIT)
      return { problem: t('errors.dedupe-max-entries', { max: String(def.maxEntries) }) };
    return {
      settings: {
        kind,
        scope,
        property,
        limits: { maxEntries, windowMs: windowSeconds * 1000 },
        persist: readBoolean(def.persist, false),
      },
    };
  }

  function Dedupe(this: Node, def: DedupeDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const read = readSettings(def);
    if (!read.settings) return failAllInput(node, read.problem);
    const settings = read.settings;
    const seenDirectory = nodeDataDirectory(RED, 'dedupe', node);
    if (settings.persist && !seenDirectory) return failAllInput(node, t('errors.dedupe-no-user-dir'));
    // Switched off after it was on: what it remembered stays on disk, unused; the user decides its fate.
    if (!settings.persist && seenDirectory && existsSync(seenDirectory))
      node.warn(t('errors.dedupe-disk-unused', { directory: seenDirectory }));

    const keyOf = keyFunction({
      kind: settings.kind,
      scope: settings.scope,
      readProperty: (msg) => RED.util.getMessageProperty(msg as NodeMessage, settings.property),
    });
    let passed = 0;
    let dropped = 0;
    const showStatus = () =>
      node.status(
        workingStatus(
          t('status.dedupe', {
            passed: passed.toLocaleString('en-US'),
            dropped: dropped.toLocaleString('en-US'),
          }),
        ),
      );
    const statusThrottle = throttledStatus(showStatus);
    showStatus();

    let deduplicator: Deduplicator | undefined;
    const opened = Deduplicator.open(
      settings.limits,
      settings.persist && seenDirectory ? new LevelSeenStore(seenDirectory) : undefined,
    ).then(
      (ready) => (deduplicator = ready),
      (error: Error) => {
        node.status(failedStatus(t('status.seen-set-failed')));
        node.error(t('errors.seen-set-open-failed', { reason: error.message }));
        throw error;
      },
    );
    // Reported above; messages and close() each handle the failure on their own.
    opened.catch(() => undefined);
    const stopReporting = reportDedupe({
      id: node.id,
      name: node.name || '',
      read: () => ({ keys: deduplicator?.size ?? 0, passed, duplicates: dropped }),
    });

    type Send = (msg: Array<NodeMessage | null>) => void;
    type Done = (error?: Error) => void;
    /** By key, the fate of each first copy still in its flow behind an in node with ack: complete: kept or not. */
    const firstCopiesInFlow = new Map<string, Promise<boolean>>();
    function handle(ready: Deduplicator, msg: DedupeMessage, send: Send, done: Done) {
      if (msg.reset) {
        ready.reset().then(() => done(), done);
        return;
      }
      let key: string;
      try {
        key = keyOf(msg);
      } catch (error) {
        const reason =
          error instanceof MissingKeyError
            ? t('errors.dedupe-missing-property', { property: settings.property })
            : t('errors.dedupe-no-key', { reason: (error as Error).message });
        return done(new Error(reason));
      }
      // Behind a durable mqtt in that acknowledges once the flow has finished, a first copy's key is
      // written when the flow has finished with it, before the acknowledgment: a crash while the flow
      // works on it lets the copy delivered again pass, never drops it unhandled. A flow that failed
      // leaves no key, so the copy sent again is handled.
      const msgId = (msg as NodeMessage)._msgid as string;
      const untilFinished = ready.persistent && flowCompletion.follows(msgId);
      const verdict = ready.check(key, Date.now(), untilFinished);
      statusThrottle.soon();
      if (verdict.duplicate) {
        dropped++;
        // Its first copy is still in the flow: this copy is answered as that one ends, so a first copy
        // that fails is not answered "done" through its duplicate, and its publisher sends it again.
        const firstCopy = firstCopiesInFlow.get(key);
        if (firstCopy && flowCompletion.follows(msgId))
          flowCompletion.beforeFinish(msgId, () =>
            firstCopy.then((kept) => {
              if (!kept) throw new Error(t('errors.dedupe-first-copy-failed'));
            }),
          );
        msg.duplicateOf = { firstSeenAt: verdict.firstSeenAt, count: verdict.count };
        send([null, msg as NodeMessage]);
        return done();
      }
      passed++;
      if (untilFinished) {
        let settle!: (kept: boolean) => void;
        firstCopiesInFlow.set(key, new Promise<boolean>((resolve) => (settle = resolve)));
        const settled = (kept: boolean) => {
          firstCopiesInFlow.delete(key);
          settle(kept);
        };
        flowCompletion.beforeFinish(msgId, (outcome) => {
          if (outcome.timedOut || outcome.error !== undefined) {
            ready.forget(key);
            settled(false);
            return Promise.resolve();
          }
          return ready.keep(key).then(
            () => settled(true),
            (error: Error) => {
              settled(false);
              const reason = t('errors.seen-set-write-failed', { reason: error.message });
              node.error(reason, msg as NodeMessage);
              throw new Error(reason);
            },
          );
        });
        send([msg as NodeMessage, null]);
        return done();
      }
      send([msg as NodeMessage, null]);
      // A first copy is done once its key is on disk: an mqtt in with ack "complete" acknowledges it only then.
      if (!ready.persistent) return done();
      ready.committed().then(
        () => done(),
        (error: Error) => done(new Error(t('errors.seen-set-write-failed', { reason: error.message }))),
      );
    }

    node.on('input', (incoming: NodeMessageInFlow, send, done) => {
      const msg = incoming as DedupeMessage;
      if (deduplicator) return handle(deduplicator, msg, send, done);
      // Messages that come while the seen-set opens wait for it, in their order.
      opened.then(
        (ready) => handle(ready, msg, send, done),
        (error: Error) => done(new Error(t('errors.seen-set-open-failed', { reason: error.message }))),
      );
    });

    node.on('close', (removed: boolean, done: () => void) => {
      stopReporting();
      statusThrottle.cancel();
      // A deleted node takes its seen-set with it; a redeploy or a restart keeps it.
      opened
        .then((ready) => (removed ? ready.destroy() : ready.close()))
        .catch(() => undefined)
        .then(done, done);
    });
  }

  RED.nodes.registerType('durable-mqtt-dedupe', Dedupe);
  serveAdminRoutes(RED);
};
