import type { Node, NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { IClientPublishOptions } from 'mqtt';
import type { BrokerConfigNode } from './broker-config.js';
import { ConnectionError, type ConnectionStatus, type QoS } from './lib/connection/types.js';
import { publishTopicProblem } from './lib/topic.js';
import { PayloadError, encodePayload, publishFits } from './lib/payload.js';
import { readBoolean, readNumber, readQos, readString } from './lib/config-values.js';
import { DurablePublisher } from './lib/outbox/durable-publisher.js';
import { LevelOutboxStore } from './lib/outbox/level-store.js';
import { OutboxFullError } from './lib/outbox/limits.js';
import { encodeProperties } from './lib/outbox/properties.js';
import { LeftoverOutbox } from './lib/outbox/leftover-outbox.js';
import { MESSAGE_ID_PROPERTY, isMessageId, newMessageId, wrapEnvelope } from './lib/end-to-end-id.js';
import { RECEIPT_REQUESTED, RECEIPT_REQUEST_PROPERTY } from './lib/receipt.js';
import {
  InvalidReceiptSettingError,
  listenForReceipts,
  readReceiptSettings,
  type ReceiptSettings,
} from './node-red/receipt-settings.js';
import { storableMessage } from './node-red/stored-message.js';
import { reportFates, type FateReporting } from './node-red/outbox-fates.js';
import { connectionNodeStatus, failAllInput, failedStatus, throttledStatus } from './node-red/status.js';
import { translator } from './node-red/i18n.js';
import { reportOutbox } from './node-red/monitor/outbox-source.js';
import { serveAdminRoutes } from './node-red/monitor/serve.js';
import {
  InvalidPropertyError,
  InvalidPropertySettingError,
  nodePublishProperties,
  publishProperties,
  type PublishProperties,
} from './node-red/mqtt5-properties.js';
import { nodeDataDirectory } from './node-red/data-directory.js';
import { DropCount } from './node-red/drop-count.js';
import { isConnectionAction, runConnectionAction } from './node-red/connection-actions.js';
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_MESSAGES,
  InputError,
  PERSISTENCE_MODES,
  TOPIC_SOURCES,
  type LiveMessage,
  type MqttOutDef,
  type OutMessage,
  type Persistence,
  type TopicSource,
} from './node-red/out-settings.js';

module.exports = function (RED: NodeAPI) {
  const t = translator(RED);

  function MqttOut(this: Node, def: MqttOutDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const brokerNode = RED.nodes.getNode(def.broker) as BrokerConfigNode | null;
    const nodeTopic = readString(def.topic).trim();
    const topicSource: TopicSource = TOPIC_SOURCES.includes(def.topicType as TopicSource)
      ? (def.topicType as TopicSource)
      : 'str';
    const nodeQos = readQos(def.qos);
    const nodeRetain =
      def.retain === '' || def.retain === undefined ? undefined : readBoolean(def.retain, false);
    const persistence: Persistence = def.persistence || 'none';
    /** Messages refused or lost to a bound, shown in the status. */
    const dropped = new DropCount();
    /** Messages whose receipts said no for good, or did not come in time (`until: subscriber`). */
    const undelivered = new Map<'rejected' | 'expired', number>();
    const fates: FateReporting = {
      node,
      t,
      cloneMessage: (msg) => RED.util.cloneMessage(msg),
      tellsReceipts: persistence === 'acknowledged',
      dropped,
      undelivered,
      changed: () => statusThrottle.soon(),
    };

    if (!brokerNode?.connection) return failAllInput(node, t('errors.no-broker'));
    if (!PERSISTENCE_MODES.includes(persistence)) {
      return failAllInput(node, t('errors.persistence-unavailable', { mode: persistence }));
    }
    const outboxDirectory = nodeDataDirectory(RED, 'outbox', node);
    if (persistence !== 'none' && !outboxDirectory) return failAllInput(node, t('errors.no-user-dir'));
    let nodeProperties: PublishProperties | undefined;
    try {
      nodeProperties = nodePublishProperties(def);
    } catch (error) {
      if (!(error instanceof InvalidPropertySettingError)) throw error;
      return failAllInput(node, t('errors.invalid-property-setting', { setting: error.setting }));
    }
    let receipts: ReceiptSettings | undefined;
    try {
      receipts = persistence === 'acknowledged' ? readReceiptSettings(def, node.id) : undefined;
    } catch (error) {
      if (!(error instanceof InvalidReceiptSettingError)) throw error;
      return failAllInput(
        node,
        t('errors.invalid-receipt-setting', { setting: error.setting, value: error.value }),
      );
    }
    if (receipts && (nodeProperties?.responseTopic || nodeProperties?.correlationData))
      node.warn(t('errors.receipt-properties-taken', { topic: receipts.topic }));
    const connection = brokerNode.connection;
    // Read per message: a msg.broker may change the protocol version.
    const isV5 = () => connection.options.protocolVersion === 5;
    if (nodeProperties && !isV5()) node.warn(t('errors.properties-need-v5'));
    // Receipts are answered by message id: every message gets one, and on MQTT 3.1.1 the envelope carries it.
    const stampIds = receipts !== undefined || readBoolean(def.messageId, false);
    const envelope =
      stampIds && !isV5() && (receipts !== undefined || readBoolean(def.messageIdEnvelope, false));
    if (stampIds && !isV5() && !envelope) node.warn(t('errors.message-id-no-carrier'));
    let publisher: DurablePublisher<LiveMessage> | undefined;
    let stopReporting = () => {};
    /** The outbox a persistent mode left, delivered and then removed now that the mode is none. */
    let leftover: LeftoverOutbox | undefined;

    const showStatus = (status: ConnectionStatus) => {
      const extras: string[] = [];
      if (publisher) extras.push(t('status.queued', { count: publisher.queued.toLocaleString('en-US') }));
      if (publisher?.awaitingReceipts)
        extras.push(t('status.awaiting-receipts', { count: publisher.awaitingReceipts }));
      if (publisher?.outbox.overBound) extras.push(t('status.over-bound'));
      for (const [status, count] of undelivered) extras.push(t(`status.${status}`, { count }));
      if (leftover) extras.push(t('status.leftover', { count: leftover.left.toLocaleString('en-US') }));
      const droppedText = dropped.text(t);
      if (droppedText) extras.push(droppedText);
      node.status(connectionNodeStatus(t, status, extras.join(' · ') || undefined));
    };
    const statusThrottle = throttledStatus(() => showStatus(connection.status));
    connection.on('status', showStatus);
    connection.register(node);
    showStatus(connection.status);

    let qosRaisedWarned = false;
    /** Acknowledged delivery needs an acknowledgment: QoS 0 has none, so it becomes 1 (said once). */
    const deliveryQos = (qos: QoS): QoS => {
      if (persistence !== 'acknowledged' || qos > 0) return qos;
      if (!qosRaisedWarned) node.warn(t('errors.qos-raised'));
      qosRaisedWarned = true;
      return 1;
    };

    const limits = {
      maxMessages: readNumber(def.maxMessages, DEFAULT_MAX_MESSAGES),
      maxBytes: readNumber(def.maxBytes, DEFAULT_MAX_BYTES),
      overflow: def.overflow === 'dropOldest' ? ('dropOldest' as const) : ('rejectNew' as const),
    };
    const opened =
      persistence === 'none' || !outboxDirectory
        ? Promise.resolve(undefined)
        : DurablePublisher.open<LiveMessage>({
            store: new LevelOutboxStore(outboxDirectory),
            limits,
            connection,
            receipts: receipts?.options,
          }).then(
            (opened) => {
              publisher = opened;
              reportFates(opened, fates);
              stopReporting = reportOutbox(RED, { node, t, def, connection, publisher: opened });
              for (const note of opened.outbox.recoveryNotes)
                node.warn(t('errors.outbox-recovered', { note }));
              if (opened.outbox.overBound)
                node.warn(
                  t('errors.outbox-over-bound', {
                    count: opened.outbox.count,
                    bytes: opened.outbox.bytes,
                    maxMessages: limits.maxMessages,
                    maxBytes: limits.maxBytes,
                  }),
                );
              showStatus(connection.status);
              return opened;
            },
            (error: Error) => {
              node.status(failedStatus(t('status.outbox-failed')));
              node.error(t('errors.outbox-open-failed', { reason: error.message }));
              throw error;
            },
          );

    // Switched to none from a persistent mode: what the outbox still holds was accepted, so it is
    // delivered, then the outbox is removed (never stranded on disk without a word).
    const leftoverOpened =
      persistence === 'none' && outboxDirectory
        ? LeftoverOutbox.open(outboxDirectory, connection, (error) => {
            if (error)
              node.warn(
                t('errors.leftover-not-removed', { directory: outboxDirectory, reason: error.message }),
              );
            else node.log(t('log.leftover-delivered', { count: leftover?.found ?? 0 }));
            leftover = undefined;
            showStatus(connection.status);
          }).then(
            (found) => {
              if (!found) return undefined;
              leftover = found;
              reportFates(found.events, fates);
              node.warn(t('errors.leftover-found', { count: found.found, directory: outboxDirectory }));
              showStatus(connection.status);
              return found;
            },
            (error: Error) => {
              node.error(
                t('errors.leftover-open-failed', { directory: outboxDirectory, reason: error.message }),
              );
              return undefined;
            },
          )
        : Promise.resolve(undefined);

    /** The topic a msg property or an environment variable holds; undefined (refused below) when unreadable. */
    function topicFrom(msg: OutMessage): unknown {
      try {
        return RED.util.evaluateNodeProperty(nodeTopic, topicSource, node, msg as NodeMessage);
      } catch {
        return undefined;
      }
    }

    let lastValidTopic: string | undefined;
    let topicAliasWarned = false;

    /** Topic, QoS, retain and properties for a msg; throws InputError when one is invalid. */
    function publishTarget(msg: OutMessage): { topic: string; options: IClientPublishOptions } {
      const topic = topicSource === 'str' ? nodeTopic || msg.topic : topicFrom(msg);
      // The last valid topic is not checked again: a node's own topic, or a run of msgs to one topic,
      // costs one comparison per message. Only a string can be it (before the first, none is).
      if (typeof topic !== 'string' || topic !== lastValidTopic) {
        const problem = publishTopicProblem(topic);
        if (problem) {
          throw new InputError(
            'invalid-topic',
            t('errors.invalid-topic', { topic: String(topic), reason: t(`topic-problem.${problem}`) }),
          );
        }
        lastValidTopic = topic as string;
      }
      const qos = nodeQos ?? (msg.qos === undefined ? 0 : readQos(msg.qos));
      if (qos === undefined)
        throw new InputError('invalid-qos', t('errors.invalid-qos', { qos: String(msg.qos) }));
      let retain = nodeRetain;
      if (retain === undefined) {
        if (msg.retain === undefined) retain = false;
        else if (msg.retain === true || msg.retain === 'true') retain = true;
        else if (msg.retain === false || msg.retain === 'false') retain = false;
        else
          throw new InputError('invalid-retain', t('errors.invalid-retain', { retain: String(msg.retain) }));
      }
      const options: IClientPublishOptions = { qos: qos as QoS, retain };
      const properties = publishProperties(msg, nodeProperties);
      if (properties && isV5()) options.properties = properties;
      if (msg.topicAlias !== undefined && !topicAliasWarned) {
        topicAliasWarned = true;
        node.warn(t('errors.topic-alias-ignored'));
      }
      return { topic: topic as string, options };
    }

    /**
     * Gives the msg its id (the one it carries, e.g. from a durable mqtt in, or a new one) and puts it
     * where it travels: the MQTT 5 user property, or the envelope. Returns the payload to publish.
     */
    function stampMessageId(msg: OutMessage, options: IClientPublishOptions, payload: Buffer | string) {
      const id = msg.messageId === undefined ? newMessageId() : msg.messageId;
      if (!isMessageId(id)) throw new InputError('invalid-message-id', t('errors.message-id-invalid'));
      msg.messageId = id;
      if (isV5()) {
        const properties = options.properties ?? {};
        properties.userProperties = { ...properties.userProperties, [MESSAGE_ID_PROPERTY]: id };
        if (receipts) {
          // The reply address: MQTT 5's own request/response properties, and a mark that it is for receipts.
          properties.userProperties[RECEIPT_REQUEST_PROPERTY] = RECEIPT_REQUESTED;
          properties.responseTopic = receipts.topic;
          properties.correlationData = Buffer.from(id);
        }
        options.properties = properties;
        return payload;
      }
      return envelope ? wrapEnvelope(id, payload, receipts?.topic) : payload;
    }

    const receiptListener =
      receipts &&
      listenForReceipts(connection, receipts.topic, brokerNode.persistentSession, {
        receipt: (receipt) => publisher?.receive(receipt),
        stray: () => {
          if (!strayWarned) node.warn(t('errors.receipt-stray', { topic: receipts.topic }));
          strayWarned = true;
        },
        refused: (code) => {
          node.status(failedStatus(t('status.receipts-refused')));
          node.error(t('errors.receipt-subscribe-refused', { topic: receipts.topic, code }));
        },
      });
    let strayWarned = false;

    node.on('input', (incoming: NodeMessageInFlow, send, done) => {
      const msg = incoming as OutMessage;
      if (msg.action !== undefined) {
        if (!isConnectionAction(msg.action))
          return done(new Error(t('errors.unknown-out-action', { action: String(msg.action) })));
        return void runConnectionAction(t, msg.action, msg, brokerNode).then(() => done(), done);
      }
      let target: { topic: string; options: IClientPublishOptions };
      let payload: Buffer | string;
      /** The payload's bytes before an envelope wraps them: a stored msg takes them back from it. */
      let encoded: Buffer | string;
      try {
        target = publishTarget(msg);
        payload = encodePayload(msg.payload);
        encoded = payload;
        // Made here, once: the outbox stores it with the message, so every resend carries the same id.
        if (stampIds) payload = stampMessageId(msg, target.options, payload);
        if (!publishFits(target.topic, payload))
          throw new InputError('payload-too-large', t('errors.payload-too-large', { topic: target.topic }));
      } catch (error) {
        if (error instanceof InvalidPropertyError)
          return done(
            new InputError('invalid-property', t('errors.invalid-property', { name: error.property })),
          );
        if (error instanceof InputError || error instanceof PayloadError) return done(error);
        throw error;
      }
      if (persistence !== 'none') {
        const qos = deliveryQos(target.options.qos ?? 0);
        const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
        const record = {
          topic: target.topic,
          payload: bytes,
          qos,
          retain: target.options.retain ?? false,
          properties: encodeProperties(target.options.properties),
          messageId: receipts ? (msg.messageId as string) : undefined,
          msg: persistence === 'acknowledged' ? storableMessage(msg, bytes, encoded) : undefined,
        };
        // queued: done once safe (on disk, or acknowledged before its write), nothing kept in memory;
        // acknowledged: done when the broker acknowledges.
        const live: LiveMessage | undefined =
          persistence === 'acknowledged' ? { msg: incoming, send, done } : undefined;
        // Once the outbox is open (the usual case), straight to it, without a turn through `opened`.
        const accepted = publisher
          ? publisher.accept(record, live)
          : opened.then((ready) => (ready as DurablePublisher<LiveMessage>).accept(record, live));
        accepted.then(
          () => {
            if (persistence === 'queued') done();
          },
          (error: Error) => {
            if (error instanceof OutboxFullError) {
              dropped.add();
              statusThrottle.soon();
              return done(
                new Error(t('errors.outbox-full', { topic: target.topic, max: error.limits.maxMessages })),
              );
            }
            done(new Error(t('errors.outbox-write-failed', { reason: error.message })));
          },
        );
        return;
      }
      connection.publish(target.topic, payload, target.options, (error) => {
        if (!error) return done();
        if (error instanceof ConnectionError && error.code === 'not-connected') {
          dropped.add();
          showStatus(connection.status);
          return done(
            new ConnectionError('not-connected', t('errors.dropped-not-connected', { topic: target.topic })),
          );
        }
        done(error);
      });
    });

    node.on('close', (removed: boolean, done: () => void) => {
      stopReporting();
      connection.off('status', showStatus);
      receiptListener?.close(removed);
      statusThrottle.cancel();
      // A deleted node takes its outbox with it; a redeploy or a restart keeps it.
      const closeOutbox = async (ready: { close(discard: boolean): Promise<number> } | undefined) => {
        if (!ready) return;
        const left = await ready.close(removed);
        if (removed && left > 0) node.warn(t('errors.outbox-discarded', { count: left }));
      };
      const closing = Promise.all([opened.then(closeOutbox), leftoverOpened.then(closeOutbox)]).catch(
        () => undefined,
      );
      closing.then(() => connection.deregister(node)).then(done, done);
    });
  }

  RED.nodes.registerType('durable-mqtt-out', MqttOut);
  serveAdminRoutes(RED);
};
