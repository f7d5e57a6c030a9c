import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { IPublishPacket } from 'mqtt';
import type { BrokerConfigNode } from './broker-config.js';
import type {
  ConnectionStatus,
  QoS,
  SubscribeFailure,
  Subscriber,
  SubscriptionOptions,
} from './lib/connection/types.js';
import { filterProblem } from './lib/topic.js';
import { DATATYPES, PayloadError, decodePayload, type Datatype } from './lib/payload.js';
import { readBoolean, readNumber, readQos, readString } from './lib/config-values.js';
import { flowCompletion } from './lib/completion-tracker.js';
import { followFlowCompletion } from './node-red/completion-hooks.js';
import { ReceiptReplies, replyAddressOf, type ReplyAddress } from './node-red/receipt-reply.js';
import {
  DEFAULT_MAX_DELIVERIES,
  InNodeQuarantine,
  reportQuarantine,
  type Admission,
} from './node-red/quarantine.js';
import { nodeDataDirectory } from './node-red/data-directory.js';
import { MAX_SUBSCRIBER_NAME_LENGTH } from './lib/receipt-expectation.js';
import { connectionNodeStatus, failAllInput, failedStatus } from './node-red/status.js';
import { MESSAGE_ID_PROPERTY, isMessageId, unwrapEnvelope } from './lib/end-to-end-id.js';
import { translator } from './node-red/i18n.js';
import { MSG_PROPERTIES } from './node-red/mqtt5-properties.js';
import { nextMsgId } from './node-red/msgid.js';
import { isConnectionAction, runConnectionAction } from './node-red/connection-actions.js';
import {
  InvalidSubscriptionOptionError,
  hasSubscriptionOptions,
  readSubscriptionOptions,
} from './node-red/subscription-options.js';

interface MqttInDef extends NodeDef {
  broker: string;
  topic: string;
  qos: string | number;
  datatype: Datatype;
  /** 'static' subscribes `topic` at deploy; 'dynamic' waits for msg.action. */
  topicType?: 'static' | 'dynamic';
  /** 'receipt' acknowledges a QoS 1 message on arrival; 'complete' once the flow has finished with it. */
  ack?: 'receipt' | 'complete';
  /** Seconds after which a message the flow has not finished is acknowledged anyway. */
  ackTimeout?: string | number;
  /** The name receipts carry to a durable mqtt out with `until: subscriber`; empty: the node's name, or its id. */
  subscriberName?: string;
  /** With ack 'complete': deliveries of one message the flow gets at most before it is quarantined; 0: no quarantine. */
  maxDeliveries?: string | number;
  /** Unwrap the MQTT 3.1.1 message-id envelope of a durable mqtt out into msg.messageId and msg.payload. */
  unwrapEnvelope?: boolean | string;
  /** MQTT 5 No Local, Retain As Published, Retain Handling (absent in older flows: false, false, 0). */
  nl?: boolean | string;
  rap?: boolean | string;
  rh?: number | string;
}

const DEFAULT_ACK_TIMEOUT = 60;

/** What a dynamic-subscription msg may carry in `msg.topic`. */
type TopicRequest = string | { topic: string; qos?: unknown; nl?: unknown; rap?: unknown; rh?: unknown };

interface ActionMessage extends Omit<NodeMessageInFlow, 'topic'> {
  action?: unknown;
  topic?: unknown;
  qos?: unknown;
  nl?: unknown;
  rap?: unknown;
  rh?: unknown;
  broker?: unknown;
}

module.exports = function (RED: NodeAPI) {
  const t = translator(RED);

  function MqttIn(this: Node, def: MqttInDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    const brokerNode = RED.nodes.getNode(def.broker) as BrokerConfigNode | null;
    const datatype: Datatype = DATATYPES.includes(def.datatype) ? def.datatype : 'auto-detect';
    const defaultQos: QoS = readQos(def.qos) ?? 1;
    const dynamic = def.topicType === 'dynamic';
    const ackOnComplete = def.ack === 'complete';
    const ackTimeoutMs = readNumber(def.ackTimeout, DEFAULT_ACK_TIMEOUT) * 1000;
    const unwrap = readBoolean(def.unwrapEnvelope, false);
    const subscriberName = readString(def.subscriberName).trim() || def.name || node.id;
    // Receipts carry it; a publisher refuses a longer one, and `expect` lists names separated by commas.
    if (subscriberName.length > MAX_SUBSCRIBER_NAME_LENGTH || subscriberName.includes(','))
      node.warn(t('errors.subscriber-name-unusable', { max: MAX_SUBSCRIBER_NAME_LENGTH }));
    if (ackOnComplete) followFlowCompletion(RED);
    const maxDeliveries = readNumber(def.maxDeliveries, DEFAULT_MAX_DELIVERIES);
    if (ackOnComplete && !(maxDeliveries >= 0))
      node.warn(t('errors.max-deliveries-invalid', { value: String(def.maxDeliveries) }));
    const quarantineDirectory = nodeDataDirectory(RED, 'quarantine', node);
    const quarantine =
      ackOnComplete && maxDeliveries >= 1 && quarantineDirectory
        ? new InNodeQuarantine(quarantineDirectory, Math.floor(maxDeliveries), (error) =>
            node.error(t('errors.quarantine-unavailable', { reason: error.message })),
          )
        : undefined;

    if (!brokerNode?.connection) {
      node.status(failedStatus(t('status.no-broker')));
      node.error(t('errors.no-broker'));
      return;
    }
    const connection = brokerNode.connection;
    const isV5 = () => connection.options.protocolVersion === 5;
    const replies = new ReceiptReplies(connection, (topic, failure) =>
      node.debug(t('log.receipt-not-sent', { topic, reason: failure.message })),
    );
    let nodeOptions: SubscriptionOptions;
    try {
      nodeOptions = readSubscriptionOptions(def);
    } catch (error) {
      if (!(error instanceof InvalidSubscriptionOptionError)) throw error;
      // A dynamic node then refuses its msgs with the reason, rather than dropping them.
      return failAllInput(node, optionError(error));
    }
    if (!isV5() && hasSubscriptionOptions(nodeOptions)) node.warn(t('errors.subscription-options-v5'));

    const subscriber: Subscriber = {
      nodeId: node.id,
      onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void | Promise<void> {
        const msg: NodeMessage & Record<string, unknown> = {
          _msgid: nextMsgId(),
          topic,
          qos: packet.qos,
          retain: packet.retain,
        };
        const properties = packet.properties;
        if (properties) {
          for (const name of MSG_PROPERTIES) if (properties[name] !== undefined) msg[name] = properties[name];
          // A user property is a string, or a list when it was sent more than once: the first counts.
          const sent = properties.userProperties?.[MESSAGE_ID_PROPERTY];
          const sentId = Array.isArray(sent) ? sent[0] : sent;
          if (isMessageId(sentId)) msg.messageId = sentId;
        }
        const unwrapped = unwrap ? unwrapEnvelope(payload) : undefined;
        if (unwrapped) msg.messageId = unwrapped.id;
        else if (!unwrap && !envelopeWarned && unwrapEnvelope(payload)?.reply) {
          envelopeWarned = true;
          node.warn(t('errors.receipt-envelope-wrapped', { topic }));
        }
        const reply = typeof msg.messageId === 'string' ? replyAddressOf(packet, unwrapped) : undefined;
        try {
          msg.payload = decodePayload(unwrapped?.payload ?? payload, datatype);
        } catch (error) {
          if (!(error instanceof PayloadError)) throw error;
          msg.payload = payload.toString('utf8');
          node.error(t('errors.invalid-json', { topic, reason: error.message }), msg);
          // No flow can take it as it is: resending it would not help.
          if (reply) answer(reply, msg.messageId as string, error.message, true);
          return;
        }
        if (!ackOnComplete || (packet.qos === 0 && !reply)) {
          node.send(msg);
          // Acknowledged on arrival: so is the receipt.
          if (reply) answer(reply, msg.messageId as string, undefined);
          return;
        }
        if (!quarantine) return passToFlow(msg, reply, undefined);
        const messageId = msg.messageId as string | undefined;
        return quarantine.admit(packet, messageId, unwrapped?.payload ?? payload).then(
          (admission) =>
            admission.pass ? passToFlow(msg, reply, admission.key) : holdBack(msg, reply, admission),
          (error: Error) => {
            // Uncounted rather than held: the flow gets it, and the log says why it was not counted.
            node.error(t('errors.quarantine-count-failed', { topic, reason: error.message }), msg);
            return passToFlow(msg, reply, undefined);
          },
        );
      },
      holdsAcknowledgments: ackOnComplete,
      onSubscribeFailure(failure: SubscribeFailure) {
        node.status(failedStatus(t('status.subscribe-refused', { topic: failure.filter })));
      },
    };

    let envelopeWarned = false;

    /** Sends the msg into the flow and resolves once the flow has finished with it (ack: complete). */
    function passToFlow(msg: NodeMessage, reply: ReplyAddress | undefined, countKey: string | undefined) {
      const id = msg._msgid as string;
      const seconds = ackTimeoutMs / 1000;
      return new Promise<void>((resolve) => {
        flowCompletion.track(id, ackTimeoutMs, (outcome) => {
          if (outcome.timedOut) node.warn(t('errors.ack-timeout', { topic: msg.topic as string, seconds }));
          // Not finishing in time counts as a failure, told in the same words to the quarantine and the publisher.
          const failure =
            outcome.error ?? (outcome.timedOut ? t('errors.receipt-not-finished', { seconds }) : undefined);
          const acknowledgeable = quarantine?.finished(countKey, failure) ?? Promise.resolve();
          void acknowledgeable.then(() => {
            if (reply) answer(reply, msg.messageId as string, failure);
            resolve();
          });
        });
        node.send([msg, null]);
        flowCompletion.sent(id);
      });
    }

    /**
     * A message quarantined now goes to the second output, said in the log too (that output may be
     * unwired); a copy of one quarantined before goes nowhere again. Both are acknowledged, and their
     * publisher told for good.
     */
    function holdBack(
      msg: NodeMessage,
      reply: ReplyAddress | undefined,
      admission: Admission & { pass: false },
    ) {
      const { kind, entry } = admission.verdict;
      const reason = t('errors.quarantined-reason', {
        attempts: entry.attempts,
        error: entry.lastError ?? '-',
      });
      if (kind === 'quarantine') {
        const quarantined = msg as NodeMessage & { quarantine?: object };
        quarantined.quarantine = {
          attempts: entry.attempts,
          firstSeen: entry.firstSeen,
          lastError: entry.lastError,
        };
        node.warn(t('errors.quarantined', { topic: msg.topic as string, reason }));
        showStatus(connection.status);
        node.send([null, quarantined]);
      }
      if (reply) answer(reply, msg.messageId as string, reason, true);
    }

    /** Sends the receipt a publisher with `until: subscriber` waits for: negative, with `error`, when the flow failed. */
    function answer(reply: ReplyAddress, messageId: string, error: string | undefined, final = false) {
      const receipt =
        error === undefined
          ? { messageId, by: subscriberName, ok: true, at: Date.now() }
          : { messageId, by: subscriberName, ok: false, at: Date.now(), error, final };
      replies.send(reply, receipt);
    }

    function optionError(error: InvalidSubscriptionOptionError): string {
      return t('errors.invalid-subscription-option', { option: error.option, value: String(error.value) });
    }

    /** The error text for a filter that cannot be subscribed, or undefined when it can. */
    function filterError(filter: unknown): string | undefined {
      const problem = filterProblem(filter);
      if (!problem) return undefined;
      return t('errors.invalid-filter', { topic: String(filter), reason: t(`topic-problem.${problem}`) });
    }

    const showStatus = (status: ConnectionStatus) =>
      node.status(
        connectionNodeStatus(
          t,
          status,
          quarantine?.quarantinedCount
            ? t('status.quarantined', { count: quarantine.quarantinedCount })
            : undefined,
        ),
      );
    connection.on('status', showStatus);
    connection.register(node);
    showStatus(connection.status);

    const staticFilter = dynamic ? undefined : readString(def.topic).trim();
    if (staticFilter !== undefined) {
      const error = filterError(staticFilter);
      if (error) {
        node.status(failedStatus(t('status.invalid-topic')));
        node.error(error);
      } else {
        connection.subscribe(staticFilter, defaultQos, subscriber, brokerNode.persistentSession, nodeOptions);
      }
    }

    node.on('input', (incoming: NodeMessageInFlow, send, done) => {
      const msg = incoming as ActionMessage;
      if (isConnectionAction(msg.action)) {
        runConnectionAction(t, msg.action, msg, brokerNode).then(() => done(), done);
        return;
      }
      switch (msg.action) {
        case 'subscribe': {
          const requests = toRequests(msg.topic);
          if (!requests) return done(new Error(t('errors.action-needs-topic')));
          const msgQos = msg.qos === undefined ? defaultQos : readQos(msg.qos);
          if (msgQos === undefined) return done(new Error(t('errors.invalid-qos', { qos: String(msg.qos) })));
          let msgOptions: SubscriptionOptions;
          try {
            msgOptions = readSubscriptionOptions(msg, nodeOptions);
          } catch (error) {
            if (error instanceof InvalidSubscriptionOptionError) return done(new Error(optionError(error)));
            throw error;
          }
          // Validate everything first so a bad entry subscribes nothing.
          const resolved: { filter: string; qos: QoS; options: SubscriptionOptions }[] = [];
          for (const request of requests) {
            const filter = typeof request === 'string' ? request : request.topic;
            const qos =
              typeof request === 'object' && request.qos !== undefined ? readQos(request.qos) : msgQos;
            if (qos === undefined)
              return done(
                new Error(t('errors.invalid-qos', { qos: String((request as { qos: unknown }).qos) })),
              );
            const error = filterError(filter);
            if (error) return done(new Error(error));
            let options = msgOptions;
            try {
              if (typeof request === 'object') options = readSubscriptionOptions(request, msgOptions);
            } catch (optionProblem) {
              if (optionProblem instanceof InvalidSubscriptionOptionError)
                return done(new Error(optionError(optionProblem)));
              throw optionProblem;
            }
            resolved.push({ filter, qos, options });
          }
          if (!isV5() && resolved.some(({ options }) => hasSubscriptionOptions(options)))
            node.warn(t('errors.subscription-options-v5'));
          for (const { filter, qos, options } of resolved)
            connection.subscribe(filter, qos, subscriber, false, options);
          return done();
        }
        case 'unsubscribe': {
          if (msg.topic === true) {
            connection.unsubscribeAll(subscriber);
            return done();
          }
          const requests = toRequests(msg.topic);
          if (!requests) return done(new Error(t('errors.action-needs-topic')));
          for (const request of requests)
            connection.unsubscribe(typeof request === 'string' ? request : request.topic, subscriber);
          return done();
        }
        case 'getSubscriptions': {
          // The options mean something on MQTT 5 only, and are listed there.
          const held = connection.subscriptionsOf(subscriber);
          const payload = isV5() ? held : held.map(({ topic, qos }) => ({ topic, qos }));
          send({ ...msg, payload } as NodeMessage);
          return done();
        }
        default:
          return done(new Error(t('errors.unknown-action', { action: String(msg.action) })));
      }
    });

    const stopReporting = quarantine
      ? reportQuarantine(node, quarantine, t, (message) =>
          // As the broker had delivered it, counted afresh: failing again, it is quarantined again.
          subscriber.onMessage(message.topic, message.payload, { cmd: 'publish', dup: false, ...message }),
        )
      : undefined;

    node.on('close', (removed: boolean, done: () => void) => {
      stopReporting?.();
      replies.flush();
      connection.off('status', showStatus);
      // A persistent session keeps the configured subscription at the broker across a redeploy, so nothing
      // queued for it is lost; dynamic subscriptions belong to this node instance and leave with it.
      const keep = brokerNode.persistentSession && !removed;
      for (const { topic } of connection.subscriptionsOf(subscriber)) {
        connection.unsubscribe(topic, subscriber, keep && topic === staticFilter);
      }
      const closing = quarantine?.close(removed).catch(() => undefined);
      Promise.all([closing, connection.deregister(node)]).then(() => done(), done);
    });
  }

  /** msg.topic of a subscribe/unsubscribe action as a list, or undefined when it has none. */
  function toRequests(topic: unknown): TopicRequest[] | undefined {
    const list = Array.isArray(topic) ? topic : [topic];
    if (list.length === 0) return undefined;
    for (const item of list) {
      if (typeof item === 'string') continue;
      if (item && typeof item === 'object' && typeof (item as { topic?: unknown }).topic === 'string')
        continue;
      return undefined;
    }
    return list as TopicRequest[];
  }

  RED.nodes.registerType('durable-mqtt-in', MqttIn);
};
