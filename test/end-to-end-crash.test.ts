import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { Mosquitto, mosquittoBinary } from './support/mosquitto.js';
import { NodeRedRig, postNumbers } from './support/crash-rig.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { skipUnlessInstalled } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { delay, waitFor } from './support/wait.js';
import { brokerConfigNode, dedupeNode, mqttInNode, mqttOutNode } from './support/flows.js';

/** Numbered messages per scenario, as issue #16 asks. */
const TOTAL = 5000;
/**
 * The function nodes of both runtimes append their records with Node.js' fs, given to them here, with
 * when the process started (which life of a restarted process a record comes from) and the process.
 */
const SETTINGS = "functionGlobalContext: { fs: require('node:fs'), startedAt: Date.now(), process },";

/** A function node that appends one line, built by the JavaScript expression `line`, to `file`. */
function appendingNode(id: string, file: string, line: string, wires: string[][] = []) {
  return {
    id,
    type: 'function',
    z: 'tab1',
    func: `global.get('fs').appendFileSync(${JSON.stringify(file)}, ${line} + '\\n');\nreturn null;`,
    outputs: 1,
    wires: wires.length ? wires : [[]],
  };
}

/**
 * Runtime A: POST /publish {n} → durable mqtt out (acknowledged, `until`) to `topic`; the HTTP answer
 * comes at once (A is never killed: what it accepted stays in its outbox). Each msg of the out node's
 * receipt output appends `{n, status, attempts}` to `receiptsFile`.
 */
function publisherFlow(
  brokerPort: number,
  topic: string,
  receiptsFile: string,
  out: Record<string, unknown>,
): unknown[] {
  return [
    { id: 'tab1', type: 'tab', label: 'publisher' },
    brokerConfigNode({
      id: 'cfgA',
      port: brokerPort,
      clientId: `e2e-publisher-${topic.replace(/\W/g, '-')}`,
      keepalive: 10,
      cleanSession: false,
    }),
    { id: 'http1', type: 'http in', z: 'tab1', url: '/publish', method: 'post', wires: [['outA', 'reply1']] },
    { id: 'reply1', type: 'http response', z: 'tab1', statusCode: '', headers: {}, wires: [] },
    mqttOutNode({
      id: 'outA',
      z: 'tab1',
      broker: 'cfgA',
      topic,
      qos: '1',
      retain: 'false',
      persistence: 'acknowledged',
      outputs: 1,
      wires: [['receiptsA']],
      ...out,
    }),
    appendingNode(
      'receiptsA',
      receiptsFile,
      "JSON.stringify({ n: msg.payload.n, status: msg.delivery.status || 'acknowledged', attempts: msg.delivery.attempts, error: msg.delivery.error })",
    ),
  ];
}

/**
 * Runtime B: `topic` (ack: complete, envelope unwrapped) → durable dedupe (persisted) → a step that
 * appends `<n> <messageId> <when B started>` to `ledger.processed`; the copies dedupe drops append to
 * `ledger.dropped`. It says it is up with a birth message on `e2e/up/<clientId>`. With `poison`
 * (a function body), a function node runs it between dedupe and the record, and the in node's
 * quarantine output appends `<n> <msg.quarantine as JSON>` to `ledger.quarantined`.
 */
function consumerFlow(
  brokerPort: number,
  topic: string,
  ledger: Ledger,
  session: { clientId: string; cleanSession: boolean },
  poison?: { code: string; maxDeliveries: number },
): unknown[] {
  const record = appendingNode(
    'processB',
    ledger.processed,
    "msg.payload.n + ' ' + msg.messageId + ' ' + global.get('startedAt')",
  );
  return [
    { id: 'tab1', type: 'tab', label: 'consumer' },
    brokerConfigNode({
      id: 'cfgB',
      port: brokerPort,
      keepalive: 10,
      birthTopic: `e2e/up/${session.clientId}`,
      birthPayload: 'up',
      birthQos: '1',
      ...session,
    }),
    mqttInNode({
      id: 'inB',
      z: 'tab1',
      broker: 'cfgB',
      topic,
      datatype: 'json',
      ack: 'complete',
      unwrapEnvelope: true,
      subscriberName: 'consumer-b',
      ...(poison
        ? { maxDeliveries: poison.maxDeliveries, wires: [['dedupeB'], ['quarantinedB']] }
        : { wires: [['dedupeB']] }),
    }),
    dedupeNode({
      id: 'dedupeB',
      z: 'tab1',
      maxEntries: 20_000,
      persist: true,
      wires: [[poison ? 'poisonB' : 'processB'], ['droppedB']],
    }),
    record,
    appendingNode('droppedB', ledger.dropped, "msg.payload.n + ' ' + msg.messageId"),
    ...(poison
      ? [
          {
            id: 'poisonB',
            type: 'function',
            z: 'tab1',
            func: poison.code,
            outputs: 1,
            wires: [['processB']],
          },
          appendingNode(
            'quarantinedB',
            ledger.quarantined,
            "msg.payload.n + ' ' + JSON.stringify(msg.quarantine)",
          ),
        ]
      : []),
  ];
}

/** The lines of a file the flows append to, the last one only when complete. */
function linesOf(file: string): string[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean);
}

interface ReceiptLine {
  n: number;
  status: string;
  attempts: number;
  error?: string;
}

/** What A's receipt output said, and what B processed and dropped, counted per number. */
class Ledger {
  readonly dir = temporaryDirectory('durable-mqtt-e2e-');
  readonly receipts = path.join(this.dir, 'receipts-a.log');
  readonly processed = path.join(this.dir, 'processed-b.log');
  readonly dropped = path.join(this.dir, 'dropped-b.log');
  readonly quarantined = path.join(this.dir, 'quarantined-b.log');

  receiptLines(): ReceiptLine[] {
    return linesOf(this.receipts).map((line) => JSON.parse(line) as ReceiptLine);
  }

  /** The numbers whose receipt at A has `status` (the last receipt of each number counts). */
  withStatus(status: string): Set<number> {
    const last = new Map<number, string>();
    for (const receipt of this.receiptLines()) last.set(receipt.n, receipt.status);
    return new Set([...last].filter(([, s]) => s === status).map(([n]) => n));
  }

  /** How many times B's processing step saw each number. */
  processedCounts(): Map<number, number> {
    return new Map([...this.processedLives()].map(([n, lives]) => [n, lives.length]));
  }

  /** For each number B processed, in which of its lives (the start time of the process) each time. */
  processedLives(): Map<number, number[]> {
    const lives = new Map<number, number[]>();
    for (const line of linesOf(this.processed)) {
      const [n, , startedAt] = line.split(' ').map(Number);
      lives.set(n, [...(lives.get(n) ?? []), startedAt]);
    }
    return lives;
  }

  /** What B's quarantine output said of each number it got. */
  quarantinedLines(): { n: number; quarantine: { attempts: number; lastError?: string } }[] {
    return linesOf(this.quarantined).map((line) => {
      const space = line.indexOf(' ');
      return { n: Number(line.slice(0, space)), quarantine: JSON.parse(line.slice(space + 1)) };
    });
  }

  droppedCount(): number {
    return linesOf(this.dropped).length;
  }

  /** Resends A made: receipts of messages sent more than once. */
  resent(): number {
    return this.receiptLines().filter((receipt) => receipt.attempts > 1).length;
  }
}

function numbers(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The first ten of `list`, for a message that names what is wrong without printing thousands. */
function firstTen(list: Iterable<number>): string {
  const all = [...list].sort((a, b) => a - b);
  return all.slice(0, 10).join(', ') + (all.length > 10 ? ', …' : '');
}

/** The birth messages the runtimes publish on e2e/up/<clientId> on each connection, counted. */
class Births {
  private readonly counts = new Map<string, number>();

  private constructor(private readonly client: MqttClient) {
    client.on('message', (topic) => {
      const clientId = topic.slice('e2e/up/'.length);
      this.counts.set(clientId, this.of(clientId) + 1);
    });
  }

  /** Watches on the broker on `port`; reconnects (and subscribes again) after a broker restart. */
  static async watch(port: number): Promise<Births> {
    const client = await mqtt.connectAsync({
      host: '127.0.0.1',
      port,
      protocolVersion: 4,
      reconnectPeriod: 300,
    });
    const births = new Births(client);
    await client.subscribeAsync('e2e/up/#', { qos: 1 });
    return births;
  }

  of(clientId: string): number {
    return this.counts.get(clientId) ?? 0;
  }

  /** Resolves once `clientId` has connected again since it had `count` births. */
  async after(clientId: string, count: number): Promise<void> {
    await waitFor(() => this.of(clientId) > count, `${clientId} to connect`, 60_000);
    // Its subscription comes with the connection, around the birth message.
    await delay(300);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** POSTs the numbers `from`..`to` to A; resolves once A answered each of them. */
async function publish(publisher: NodeRedRig, from: number, to: number): Promise<void> {
  const accepted = await postNumbers(
    () => `${publisher.url}/publish`,
    to - from + 1,
    8,
    () => false,
    from,
  );
  assert.equal(accepted.size, to - from + 1, 'A accepted every number');
}

describe('end-to-end acknowledgment with real processes (issue #16)', function () {
  before(function () {
    skipUnlessInstalled(this, 'mosquitto', mosquittoBinary);
  });
  // Unlimited queues: while B is down, Mosquitto keeps everything for its persistent session.
  const broker = new Mosquitto({ persistence: true, unlimitedQueues: true });
  let rigs: NodeRedRig[] = [];
  let links: TcpProxy[] = [];
  let births: Births | undefined;

  before(async () => {
    await broker.start();
    births = await Births.watch(broker.port);
  });
  afterEach(async () => {
    for (const rig of rigs) await rig.stop().catch(() => rig.process?.kill());
    for (const link of links) await link.cut();
    rigs = [];
    links = [];
  });
  after(async () => {
    await births?.close();
    await broker.dispose();
  });

  it(`until: subscriber — every one of ${TOTAL} messages gets a positive receipt and is processed, exactly once per life of the consumer, while it is SIGKILLed repeatedly`, async () => {
    const ledger = new Ledger();
    const topic = 'e2e/kill';
    const publisher = new NodeRedRig(
      publisherFlow(broker.port, topic, ledger.receipts, { until: 'subscriber', receiptTimeout: 2 }),
      { settings: SETTINGS },
    );
    const session = { clientId: 'e2e-consumer-kill', cleanSession: false };
    const consumer = new NodeRedRig(consumerFlow(broker.port, topic, ledger, session), {
      settings: SETTINGS,
    });
    rigs = [publisher, consumer];
    await Promise.all([publisher.start(), consumer.start()]);
    // B's persistent session holds its subscription (and queues for it) from its first connection on.
    await births!.after(session.clientId, 0);

    // Four kills, each once B has processed a number of messages drawn around 1,000, 2,100, 3,200 and
    // 4,300: always in the middle of the stream, whatever the speed of the machine.
    const kills = (async () => {
      let count = 0;
      for (const milestone of [1000, 2100, 3200, 4300]) {
        const at = milestone + Math.floor(Math.random() * 400);
        // Polled every 200 ms: each look reads B's whole record.
        for (const deadline = Date.now() + 120_000; ledger.processedCounts().size < at; await delay(200))
          if (Date.now() > deadline) throw new Error(`B did not process ${at} messages in 2 minutes`);
        await consumer.crash();
        count++;
        await delay(Math.random() * 1000);
        await consumer.start();
      }
      return count;
    })();
    await publish(publisher, 1, TOTAL);
    const killed = await kills.catch((error: Error) => {
      console.log(`\nthe kills stopped: ${error.message}`);
      return -1;
    });
    await waitFor(
      () => ledger.withStatus('delivered').size === TOTAL,
      'a positive receipt at A for every message',
      90_000,
    ).catch(() => undefined);
    // Copies still on their way (resends, redeliveries) get their chance to show past dedupe.
    await delay(1000);

    const delivered = ledger.withStatus('delivered');
    const lives = ledger.processedLives();
    const notDelivered = numbers(1, TOTAL).filter((n) => !delivered.has(n));
    const missing = numbers(1, TOTAL).filter((n) => !lives.has(n));
    // A copy delivered again after a kill passes dedupe when the flow had finished the first one but
    // its key was not on disk yet (at least once, never lost); within one life, dedupe catches every copy.
    const twiceInOneLife = [...lives].filter(([, l]) => new Set(l).size < l.length).map(([n]) => n);
    const againAfterKill = [...lives].filter(([, l]) => new Set(l).size > 1).map(([n]) => n);
    console.log(
      `\nconsumer SIGKILLed ${killed} times (${consumer.starts} starts): messages ${TOTAL}` +
        `  positive receipts at A ${delivered.size}  resends seen (attempts > 1) ${ledger.resent()}` +
        `\n  processed by B ${lives.size}  missing ${missing.length}  duplicates dropped by B's dedupe ${ledger.droppedCount()}` +
        `\n  processed twice in one life of B ${twiceInOneLife.length}` +
        `  processed again after a kill (first copy done, its key not yet on disk) ${againAfterKill.length}`,
    );
    assert.equal(killed, 4, 'the consumer was killed 4 times while messages flowed');
    assert.equal(notDelivered.length, 0, `without a positive receipt at A: ${firstTen(notDelivered)}`);
    assert.equal(missing.length, 0, `never processed by B: ${firstTen(missing)}`);
    assert.equal(
      twiceInOneLife.length,
      0,
      `processed twice by one life of B, past dedupe: ${firstTen(twiceInOneLife)}`,
    );
  });

  /**
   * A (`until`) → Mosquitto → B on a CLEAN session behind a proxy. Numbers 1..2000 flow, then B's
   * link is cut and Mosquitto restarted, which ends B's session and subscription; A publishes
   * 2001..3500 to the restarted broker while B is still away; B comes back (subscribing anew), and
   * 3501..5000 follow. Returns the ledger once every number has its final receipt at A.
   */
  async function throughCleanSessionRestart(until: 'broker' | 'subscriber'): Promise<Ledger> {
    const ledger = new Ledger();
    const topic = `e2e/restart/${until}`;
    const link = new TcpProxy(await freePort(), broker.port);
    links.push(link);
    await link.open();
    const publisher = new NodeRedRig(
      publisherFlow(broker.port, topic, ledger.receipts, { until, receiptTimeout: 2 }),
      { settings: SETTINGS },
    );
    const session = { clientId: `e2e-consumer-clean-${until}`, cleanSession: true };
    const consumer = new NodeRedRig(consumerFlow(link.port, topic, ledger, session), {
      settings: SETTINGS,
    });
    rigs = [publisher, consumer];
    const status = until === 'broker' ? 'acknowledged' : 'delivered';
    await Promise.all([publisher.start(), consumer.start()]);
    await births!.after(session.clientId, 0);

    await publish(publisher, 1, 2000);
    await link.cut();
    await broker.stop('SIGTERM');
    await delay(300 + Math.random() * 700);
    await broker.start();
    await publish(publisher, 2001, 3500);
    // A reconnects (its backoff, up to a few seconds) and sends what it accepted meanwhile.
    if (until === 'broker')
      await waitFor(
        () => numbers(2001, 3500).every((n) => ledger.withStatus(status).has(n)),
        'the broker to acknowledge 2001..3500 while B is away',
        30_000,
      );
    else await delay(2000);
    const away = births!.of(session.clientId);
    await link.open();
    await births!.after(session.clientId, away);
    await publish(publisher, 3501, TOTAL);
    await waitFor(
      () => ledger.withStatus(status).size === TOTAL,
      `a receipt (${status}) at A for every message`,
      90_000,
    ).catch(() => undefined);
    await delay(1000);
    return ledger;
  }

  it(`until: subscriber — a Mosquitto restart with a clean-session consumer loses nothing: A sends again until each of ${TOTAL} is processed`, async () => {
    const ledger = await throughCleanSessionRestart('subscriber');
    const delivered = ledger.withStatus('delivered');
    const processed = ledger.processedCounts();
    const notDelivered = numbers(1, TOTAL).filter((n) => !delivered.has(n));
    const missing = numbers(1, TOTAL).filter((n) => !processed.has(n));
    const twice = [...processed].filter(([, count]) => count > 1).map(([n]) => n);
    console.log(
      `\nuntil: subscriber, Mosquitto restarted, B on a clean session: messages ${TOTAL}` +
        `  positive receipts at A ${delivered.size}  resends seen (attempts > 1) ${ledger.resent()}` +
        `\n  processed by B ${processed.size}  missing ${missing.length}  processed more than once ${twice.length}` +
        `  duplicates dropped by B's dedupe ${ledger.droppedCount()}`,
    );
    assert.ok(ledger.resent() > 0, 'A sent again what B never got');
    assert.equal(notDelivered.length, 0, `without a positive receipt at A: ${firstTen(notDelivered)}`);
    assert.equal(missing.length, 0, `never processed by B: ${firstTen(missing)}`);
    assert.equal(twice.length, 0, `processed more than once past dedupe: ${firstTen(twice)}`);
  });

  it(`until: broker — the same restart loses messages the broker acknowledged: the difference, measured`, async () => {
    const ledger = await throughCleanSessionRestart('broker');
    const acknowledged = ledger.withStatus('acknowledged');
    const processed = ledger.processedCounts();
    const lost = [...acknowledged].filter((n) => !processed.has(n));
    console.log(
      `\nuntil: broker — ${lost.length} of ${acknowledged.size} acknowledged by the broker were never processed by B: ids ${firstTen(lost)}`,
    );
    assert.equal(acknowledged.size, TOTAL, 'the broker acknowledged every message');
    assert.ok(lost.length > 0, 'messages acknowledged by the broker and never processed');
  });

  it('poison messages: one that makes the flow throw and one that makes the consumer exit are quarantined after maxDeliveries, the other 999 processed', async () => {
    const POISON_TOTAL = 1001;
    const THROWS = 400;
    const EXITS = 700;
    const MAX_DELIVERIES = 3;
    const ledger = new Ledger();
    const topic = 'e2e/poison';
    const publisher = new NodeRedRig(
      publisherFlow(broker.port, topic, ledger.receipts, { until: 'subscriber', receiptTimeout: 2 }),
      { settings: SETTINGS },
    );
    const session = { clientId: 'e2e-consumer-poison', cleanSession: false };
    const poison = {
      maxDeliveries: MAX_DELIVERIES,
      code:
        `if (msg.payload.n === ${THROWS}) throw new Error('cannot handle ${THROWS}');\n` +
        `if (msg.payload.n === ${EXITS}) global.get('process').exit(1);\n` +
        'return msg;',
    };
    const consumer = new NodeRedRig(consumerFlow(broker.port, topic, ledger, session, poison), {
      settings: SETTINGS,
    });
    rigs = [publisher, consumer];
    await Promise.all([publisher.start(), consumer.start()]);
    await births!.after(session.clientId, 0);

    // The rig's part: start the consumer again whenever it died.
    let watching = true;
    let exits = 0;
    const restarter = (async () => {
      while (watching) {
        await delay(200);
        if (watching && consumer.process && !consumer.process.running) {
          exits++;
          await consumer.start();
        }
      }
    })();
    try {
      await publish(publisher, 1, POISON_TOTAL);
      await waitFor(
        () => ledger.withStatus('delivered').size + ledger.withStatus('rejected').size === POISON_TOTAL,
        'a final receipt at A for every message',
        120_000,
      ).catch(() => undefined);
    } finally {
      watching = false;
      await restarter;
    }
    await delay(500);

    const delivered = ledger.withStatus('delivered');
    const rejected = ledger.withStatus('rejected');
    const lives = ledger.processedLives();
    const quarantined = ledger.quarantinedLines();
    const innocent = numbers(1, POISON_TOTAL).filter((n) => n !== THROWS && n !== EXITS);
    const notDelivered = innocent.filter((n) => !delivered.has(n));
    const missing = innocent.filter((n) => !lives.has(n));
    const rejections = ledger.receiptLines().filter((receipt) => receipt.status === 'rejected');
    console.log(
      `\npoison: messages ${POISON_TOTAL}  consumer exits ${exits}  quarantined by B ${JSON.stringify(quarantined)}` +
        `\n  rejected at A ${JSON.stringify(rejections)}` +
        `\n  positive receipts at A ${delivered.size}  processed by B ${lives.size}  missing ${missing.length}` +
        `  resends seen (attempts > 1) ${ledger.resent()}`,
    );
    assert.ok(exits >= MAX_DELIVERIES, `the consumer exited ${exits} times`);
    assert.deepEqual(
      quarantined.map(({ n }) => n).sort((a, b) => a - b),
      [THROWS, EXITS],
      'the two poison messages, once each, at the quarantine output',
    );
    for (const { n, quarantine } of quarantined)
      assert.equal(quarantine.attempts, MAX_DELIVERIES, `${n}: quarantined after maxDeliveries`);
    assert.match(
      String(quarantined.find(({ n }) => n === THROWS)?.quarantine.lastError),
      new RegExp(`cannot handle ${THROWS}`),
    );
    assert.deepEqual(
      [...rejected].sort((a, b) => a - b),
      [THROWS, EXITS],
      'rejected (final) at A',
    );
    assert.ok(!lives.has(THROWS) && !lives.has(EXITS), 'no poison message was recorded as processed');
    assert.equal(notDelivered.length, 0, `without a positive receipt at A: ${firstTen(notDelivered)}`);
    assert.equal(missing.length, 0, `never processed by B: ${firstTen(missing)}`);
  });
});
