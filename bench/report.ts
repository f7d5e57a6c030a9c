/** The benchmark's figures as a text table for the terminal and a Markdown table for the README. */
import type {
  BacklogResult,
  BrokerKind,
  DedupeResult,
  LatencyResult,
  Persistence,
  Problems,
  ProtocolVersion,
  QoS,
  SoakResult,
  ThroughputResult,
  Until,
  Variant,
} from './types.js';
import { scaleNote, scaleTable, type ScaleSummary } from './jobs/scale.js';
import { median } from './measurement.js';
import { PERSISTENCE_MODES, UNTIL_MODES, VARIANTS, VARIANT_LABELS } from './types.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  os: string;
  node: string;
  nodeRed: string;
  aedes: string;
  /** MQTT.js used by this package, and the one bundled with the core nodes. */
  mqttOurs: string;
  mqttCore: string;
  /** The commit measured, with "+ uncommitted changes" when nodes/ differs from it. */
  revision: string;
}

export interface Settings {
  window: number;
  repeat: number;
  scale: number;
  stallMs: number;
  latencyRate: number;
  latencySeconds: number;
  soakSeconds: number;
  soakRate: number;
  soakVariant: Variant;
  soakPersistence: Persistence;
  /** MQTT versions of the end-to-end acknowledgment jobs. */
  receiptsProtocols: ProtocolVersion[];
  /** Messages of the offline backlog; 0 when it did not run. */
  backlogMessages: number;
  backlogOutstanding: number;
  /** The scale job's clients and measured window (s). */
  scaleClients: number;
  scaleSeconds: number;
  /** Messages of each Node-RED alone case, whatever the case's N. */
  floorMessages: number;
  /** Ours embedded and the persistence cases send this many times a case's N. */
  embeddedMessagesFactor: number;
}

export interface VariantThroughput {
  /** Median over the repeats, msg/s. */
  rate: number;
  /** Largest number lost in any repeat. */
  lost: number;
  stalled: boolean;
  capped: boolean;
  /** Median RSS right after the case, MB. */
  rssMB: number;
  peakRssMB: number;
  idleRssMB: number;
  runs: ThroughputResult[];
}

export interface CaseSummary {
  name: string;
  qos: number;
  size: number;
  messages: number;
  variants: Partial<Record<Variant, VariantThroughput>>;
  /** Over core: ours per transport (embedded, tcp), and Node-RED alone (floor). */
  ratios: Partial<Record<Variant, number>>;
}

/**
 * The most any MQTT node pair could reach against an ours/core goal: Node-RED alone
 * moves `ratio` times core's rate through the same flow shape; MQTT nodes only add work.
 */
export interface Ceiling {
  qos: number;
  size: number;
  /** The ours/core goal. */
  goal: number;
  floorRate: number;
  coreRate: number;
  /** floorRate / coreRate. */
  ratio: number;
  /** ratio ≥ goal: the goal is not ruled out by Node-RED itself. */
  reachable: boolean;
}

/** Our out node with each persistence setting, ours embedded. */
export interface DurableSummary {
  name: string;
  qos: number;
  size: number;
  messages: number;
  modes: Partial<Record<Persistence, VariantThroughput>>;
  /** queued / none and acknowledged / none. */
  ratios: Partial<Record<Persistence, number>>;
}

/**
 * End-to-end acknowledgment over one MQTT version, ours embedded: our out node with persistence
 * acknowledged until the broker's acknowledgment and until the subscriber's receipt, counted at
 * its receipt output; and the receipt latency at a steady rate, until subscriber.
 */
export interface ReceiptsSummary {
  protocolVersion: ProtocolVersion;
  qos: number;
  size: number;
  messages: number;
  modes: Partial<Record<Until, VariantThroughput>>;
  /** until subscriber / until broker. */
  ratio?: number;
  /** Until subscriber at the latency rate: from the out node's input to its receipt output. */
  latency?: LatencyResult;
}

/**
 * The embedded broker node serving two MQTT.js clients of another process over TCP, at one QoS,
 * on MQTT 3.1.1 (4) and MQTT 5 side by side.
 */
export interface ClientsSummary {
  qos: QoS;
  size: number;
  messages: number;
  versions: Partial<Record<ProtocolVersion, VariantThroughput>>;
  /** MQTT 5 / MQTT 3.1.1. */
  ratio?: number;
  /** The same clients on MQTT 3.1.1 against Mosquitto, and the embedded broker's MQTT 3.1.1 rate over it. */
  mosquitto?: VariantThroughput;
  mosquittoRatio?: number;
}

export interface BacklogSummary {
  messages: number;
  outstanding: number;
  maxMessages: number;
  maxBytes: number;
  result: BacklogResult;
  goalMB: number;
  /** RSS after gc below the goal, every message queued, no stall. */
  met: boolean;
}

export interface DedupeSummary {
  persist: boolean;
  messages: number;
  maxEntries: number;
  result: DedupeResult;
}

export interface SoakSummary {
  result: SoakResult;
  firstMB: number;
  lastMB: number;
  maxMB: number;
  growthMB: number;
  growthPercent: number;
  slopeMBPerMinute: number;
  leak: boolean;
}

/** One case of the `tcp` job through one broker: ours over mqtt:// and core side by side (ratios: ours tcp over core). */
export interface TcpCaseSummary extends CaseSummary {
  broker: BrokerKind;
}

/** The `tcp` job: through Mosquitto and through the embedded broker over TCP. */
export interface TcpReport {
  cases: TcpCaseSummary[];
  /** Our out node's persistence modes through Mosquitto; `none` is the case's ours row. */
  persistence: DurableSummary[];
  /** Through Mosquitto at the latency rate. */
  latency: Partial<Record<Variant, LatencyResult>>;
}

export interface Target {
  what: string;
  goal: string;
  value: string;
  /** Whether the goal is met; for a ceiling row, whether the goal is within the ceiling at all. */
  met: boolean | undefined;
  /** The row is the ceiling (Node-RED alone / core) under the goal above it, not a target. */
  ceiling?: boolean;
}

/** The editor's sidebar open (the monitor sampling) and closed, in turn in one runtime: medians of one case. */
export interface MonitorSummary {
  name: string;
  persistence: Persistence;
  /** Paced at this many messages per second; full speed when unset. */
  rate?: number;
  closed: { rate: number; cpuMicrosecondsPerMessage: number };
  open: { rate: number; cpuMicrosecondsPerMessage: number };
  /** open / closed, of the rate and of the CPU time per message. */
  openRatio?: number;
  cpuRatio?: number;
}

export interface BenchReport {
  startedAt: string;
  durationSeconds: number;
  machine: Machine;
  settings: Settings;
  throughput: CaseSummary[];
  /** Our out node's persistence modes side by side. */
  durable: DurableSummary[];
  /** End-to-end acknowledgment: until broker and until subscriber side by side, per MQTT version. */
  receipts: ReceiptsSummary[];
  /** The embedded broker serving MQTT.js clients of another process: MQTT 3.1.1 and MQTT 5 side by side. */
  clients: ClientsSummary[];
  /** Many TCP clients, the embedded broker node and Mosquitto side by side. */
  scale?: ScaleSummary;
  backlog?: BacklogSummary;
  /** What the open sidebar costs. */
  monitor: MonitorSummary[];
  /** The dedupe node, with and without its seen-set on disk. */
  dedupe: DedupeSummary[];
  latency: Partial<Record<Variant, LatencyResult>>;
  /** Ours and core through a broker over TCP loopback (Mosquitto, the embedded broker). */
  tcp?: TcpReport;
  soak?: SoakSummary;
  targets: Target[];
  /** Node-RED alone / core against each ours/core goal. */
  ceilings: Ceiling[];
  /** Loss, stalls, errors, warnings and leaks seen during the run, one line each. */
  problems: string[];
  /** Jobs that did not produce a result. */
  failures: string[];
}

export function protocolLabel(protocolVersion: ProtocolVersion | undefined): string {
  return protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';
}

export function caseLabel(qos: number, size: number): string {
  return `QoS ${qos}, ${size >= 1024 ? `${size / 1024} KB` : `${size} B`}`;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);
const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);
const percent = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? '–' : `${(n * 100).toFixed(0)} %`;
const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(bytes < 10 * 1024 ** 2 ? 1 : 0);

interface Table {
  headers: string[];
  /** 'r' for figures. */
  align: ('l' | 'r')[];
  rows: string[][];
}

function textTable({ headers, align, rows }: Table): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function markdownTable({ headers, align, rows }: Table): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(align.map((a) => (a === 'r' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

function lostCell(summary: Pick<CaseSummary, 'variants'>): string {
  const parts: string[] = [];
  for (const variant of VARIANTS) {
    const v = summary.variants[variant];
    if (!v) continue;
    const flags = [v.lost ? `${v.lost} lost` : '', v.stalled ? 'stalled' : '', v.capped ? 'capped' : '']
      .filter(Boolean)
      .join(', ');
    if (flags) parts.push(`${VARIANT_LABELS[variant]}: ${flags}`);
  }
  return parts.join('; ') || '0';
}

function throughputTable(report: BenchReport): Table {
  return {
    headers: [
      'case',
      'N',
      'ours embedded msg/s',
      'ours tcp msg/s',
      'core msg/s',
      'Node-RED alone msg/s',
      'embedded/core',
      'tcp/core',
      'alone/core',
      'lost',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: report.throughput.map((c) => [
      caseLabel(c.qos, c.size),
      int(c.messages),
      int(c.variants.embedded?.rate ?? NaN),
      int(c.variants.tcp?.rate ?? NaN),
      int(c.variants.core?.rate ?? NaN),
      int(c.variants.floor?.rate ?? NaN),
      ratio(c.ratios.embedded),
      ratio(c.ratios.tcp),
      ratio(c.ratios.floor),
      lostCell(c),
    ]),
  };
}

function memoryTable(report: BenchReport): Table {
  const cell = (v: VariantThroughput | undefined) =>
    v ? `${v.rssMB.toFixed(0)} (peak ${v.peakRssMB.toFixed(0)}, idle ${v.idleRssMB.toFixed(0)})` : '–';
  return {
    headers: ['case', 'ours embedded RSS MB', 'ours tcp RSS MB', 'core RSS MB', 'Node-RED alone RSS MB'],
    align: ['l', 'r', 'r', 'r', 'r'],
    rows: report.throughput.map((c) => [
      caseLabel(c.qos, c.size),
      cell(c.variants.embedded),
      cell(c.variants.tcp),
      cell(c.variants.core),
      cell(c.variants.floor),
    ]),
  };
}

function durableTable(summaries: DurableSummary[]): Table {
  return {
    headers: [
      'case',
      'N',
      ...PERSISTENCE_MODES.map((p) => `${p} msg/s`),
      'queued/none',
      'acknowledged/none',
      'RSS MB (none / queued / ack.)',
      'lost',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: summaries.map((c) => {
      const lost = PERSISTENCE_MODES.flatMap((p) => {
        const v = c.modes[p];
        if (!v) return [];
        const flags = [v.lost ? `${v.lost} lost` : '', v.stalled ? 'stalled' : '', v.capped ? 'capped' : '']
          .filter(Boolean)
          .join(', ');
        return flags ? [`${p}: ${flags}`] : [];
      });
      return [
        caseLabel(c.qos, c.size),
        int(c.messages),
        ...PERSISTENCE_MODES.map((p) => int(c.modes[p]?.rate ?? NaN)),
        percent(c.ratios.queued),
        percent(c.ratios.acknowledged),
        PERSISTENCE_MODES.map((p) => {
          const v = c.modes[p];
          return v ? v.peakRssMB.toFixed(0) : '–';
        }).join(' / '),
        lost.join('; ') || '0',
      ];
    }),
  };
}

/** What the durable figures measure, printed with them. */
const DURABLE_NOTE =
  'A message the broker acknowledges before its group commit is left out of the write: through the ' +
  'embedded broker most are, so these rates show the outbox more than the disk. The offline backlog writes every message.';

function receiptsTable(report: BenchReport): Table {
  return {
    headers: [
      'MQTT',
      'N',
      'until broker msg/s',
      'until subscriber msg/s',
      'subscriber/broker',
      'receipt p50 ms',
      'receipt p99 ms',
      'receipt max ms',
      'peak RSS MB (broker / subscriber)',
      'lost',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: report.receipts.map((c) => {
      const lost = UNTIL_MODES.flatMap((until) => {
        const v = c.modes[until];
        if (!v) return [];
        const flags = [v.lost ? `${v.lost} lost` : '', v.stalled ? 'stalled' : '', v.capped ? 'capped' : '']
          .filter(Boolean)
          .join(', ');
        return flags ? [`${until}: ${flags}`] : [];
      });
      if (c.latency?.delivery.lost) lost.push(`latency run: ${c.latency.delivery.lost} lost`);
      const latency = c.latency?.latency;
      return [
        protocolLabel(c.protocolVersion),
        int(c.messages),
        ...UNTIL_MODES.map((until) => int(c.modes[until]?.rate ?? NaN)),
        percent(c.ratio),
        latency ? ms(latency.p50) : '–',
        latency ? ms(latency.p99) : '–',
        latency ? ms(latency.max) : '–',
        UNTIL_MODES.map((until) => c.modes[until]?.peakRssMB.toFixed(0) ?? '–').join(' / '),
        lost.join('; ') || '0',
      ];
    }),
  };
}

/** How the end-to-end figures are measured, printed with them. */
function receiptsNote(settings: Settings): string {
  return (
    'Out node with persistence acknowledged, QoS 1, 64 B, ours embedded (clean session); the in node has ' +
    'ack: complete and feeds a junction that finishes at once. Msg/s: receipts out of the out node ' +
    '(msg.delivery) per second, the same N for both. Receipt latency, until subscriber, at ' +
    `${int(settings.latencyRate)} msg/s for ${settings.latencySeconds} s: from the out node's input to its ` +
    'receipt output, measured by the harness (not msg.delivery.latency, which starts at the latest send). ' +
    'MQTT 3.1.1 goes through the broker core with the id and reply address in an envelope; MQTT 5 speaks ' +
    'MQTT in process, with them in properties.'
  );
}

/** The median CPU time per message of one side, MQTT 3.1.1 / MQTT 5. */
/** The median CPU time per message of one side, of the runs of one broker and MQTT version. */
function cpuOf(v: VariantThroughput | undefined, side: 'brokerMicroseconds' | 'clientsMicroseconds'): string {
  const runs = v?.runs.flatMap((r) => (r.cpuPerMessage ? [r.cpuPerMessage[side]] : []));
  return runs?.length ? median(runs).toFixed(1) : '–';
}

function clientsTable(report: BenchReport): Table {
  const versions = [4, 5] as const;
  const lostOf = (label: string, v: VariantThroughput | undefined) => {
    if (!v) return [];
    const flags = [v.lost ? `${v.lost} lost` : '', v.stalled ? 'stalled' : '', v.capped ? 'capped' : '']
      .filter(Boolean)
      .join(', ');
    return flags ? [`${label}: ${flags}`] : [];
  };
  return {
    headers: [
      'case',
      'N',
      'MQTT 3.1.1 msg/s',
      'MQTT 5 msg/s',
      'MQTT 5 / 3.1.1',
      'Mosquitto msg/s (3.1.1)',
      'ours / Mosquitto',
      'broker CPU µs/msg (3.1.1 / 5 / Mosquitto)',
      'clients CPU µs/msg (3.1.1 / 5 / Mosquitto)',
      'peak RSS MB (3.1.1 / 5 / Mosquitto)',
      'lost',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: report.clients.map((c) => {
      const all = [...versions.map((version) => c.versions[version]), c.mosquitto];
      const lost = [
        ...versions.flatMap((version) => lostOf(protocolLabel(version), c.versions[version])),
        ...lostOf('Mosquitto', c.mosquitto),
      ];
      return [
        caseLabel(c.qos, c.size),
        int(c.messages),
        ...versions.map((version) => int(c.versions[version]?.rate ?? NaN)),
        percent(c.ratio),
        int(c.mosquitto?.rate ?? NaN),
        percent(c.mosquittoRatio),
        all.map((v) => cpuOf(v, 'brokerMicroseconds')).join(' / '),
        all.map((v) => cpuOf(v, 'clientsMicroseconds')).join(' / '),
        all.map((v) => v?.peakRssMB.toFixed(0) ?? '–').join(' / '),
        lost.join('; ') || '0',
      ];
    }),
  };
}

/** How the external-client figures are measured, printed with them. */
const CLIENTS_NOTE =
  'The embedded broker node in Node-RED and nothing else in the flow, or Mosquitto (started by the job: ' +
  'no persistence, no bound on messages in flight); two plain MQTT.js clients in another process, a publisher ' +
  'and a subscriber, over TCP loopback, clean sessions. Msg/s: messages the subscriber received per second. ' +
  'CPU µs/msg: user + system time of the process holding the broker (Node-RED, or mosquitto from /proc), and ' +
  "of the clients' process, per message received (steadier than msg/s on a shared machine). " +
  'Peak RSS: the process holding the broker.';

function backlogTable(backlog: BacklogSummary): Table {
  const r = backlog.result;
  const m = r.memory;
  return {
    headers: [
      'queued',
      'seconds',
      'msg/s',
      'idle RSS MB',
      `RSS MB${m.gcForced ? ' after gc' : ''}`,
      'growth over idle MB',
      'heap used MB',
      'RSS MB before gc',
      'peak RSS MB',
      'outbox on disk MB',
      'failed',
    ],
    align: ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: [
      [
        int(r.queued),
        r.seconds.toFixed(1),
        int(r.rate),
        m.idleRssMB.toFixed(0),
        m.rssMB.toFixed(0),
        (m.rssMB - m.idleRssMB).toFixed(0),
        m.heapUsedMB.toFixed(0),
        m.rssBeforeGcMB.toFixed(0),
        m.peakRssMB.toFixed(0),
        mib(r.outboxBytes),
        String(r.failed),
      ],
    ],
  };
}

function backlogLines(backlog: BacklogSummary): string[] {
  const r = backlog.result;
  const m = r.memory;
  const lines = [
    `a plain node-red process (red.js, --expose-gc, its own user directory) whose flow queues ` +
      `${int(backlog.messages)} messages of 64 B at QoS 1 into an out node with persistence queued ` +
      `(maxMessages ${int(backlog.maxMessages)}, maxBytes ${mib(backlog.maxBytes)} MB) whose broker does not listen; ` +
      `a function node keeps at most ${int(backlog.outstanding)} handed over and not yet done() (Complete and Catch nodes)`,
    `RSS of that process from /proc/[pid]/status, each time settled by 8 s of forced gcs after the last work: ` +
      `idle ${m.idleRssMB.toFixed(0)} MB, ${m.rssMB.toFixed(0)} MB after the backlog ` +
      `(the process reports ${m.reportedRssMB.toFixed(0)} MB), ` +
      `growth over idle ${(m.rssMB - m.idleRssMB).toFixed(0)} MB; ` +
      `peak ${m.peakRssMB.toFixed(0)} MB (${m.peakFromKernel ? 'VmHWM' : 'sampled every 100 ms'})`,
    `RSS while queuing (no forced gc): ` +
      (r.samples
        .map((s) => `${int(s.queued)}: ${s.rssMB.toFixed(0)} MB (heap ${s.heapUsedMB.toFixed(0)})`)
        .join(', ') || '–'),
    `outbox after: ${r.outboxCount === undefined ? 'count not read' : `${int(r.outboxCount)} messages stored`}, ` +
      `${mib(r.outboxBytes)} MB on disk (${r.queued ? Math.round(r.outboxBytes / r.queued) : 0} B per message); ` +
      `${r.stayedOffline ? 'stayed offline throughout' : 'CONNECTED during the run'}`,
    `verdict: RSS ${m.rssMB.toFixed(0)} MB ${backlog.met ? `< ${backlog.goalMB} MB: met` : `— goal < ${backlog.goalMB} MB: NOT met`}`,
  ];
  return lines;
}

function dedupeTable(report: BenchReport): Table {
  return {
    headers: [
      'persist',
      'messages',
      'msg/s',
      'keys held',
      'heap MB idle',
      'heap MB after',
      'B per key',
      'peak RSS MB',
      'lost',
    ],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: report.dedupe.map(({ persist, messages, result: r }) => [
      persist ? 'on (LevelDB)' : 'off',
      int(messages),
      int(r.rate),
      int(r.keys),
      r.idleHeapMB.toFixed(1),
      r.heapMB.toFixed(1),
      int(r.bytesPerKey),
      r.memory.peakRssMB.toFixed(0),
      String(r.delivery.lost),
    ]),
  };
}

const DEDUPE_METHOD =
  'distinct 64 B payloads straight into a dedupe node (key auto: a hash of topic and payload), at most 500 outstanding; ' +
  'heap measured after forced gcs before the first message and after the last, the node then holding maxEntries keys';

function latencyTable(latency: Partial<Record<Variant, LatencyResult>>): Table {
  return {
    headers: ['variant', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'sent msg/s', 'lost'],
    align: ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows: VARIANTS.filter((v) => latency[v]).map((variant) => {
      const r = latency[variant] as LatencyResult;
      return [
        VARIANT_LABELS[variant],
        ms(r.latency.p50),
        ms(r.latency.p90),
        ms(r.latency.p99),
        ms(r.latency.p999),
        ms(r.latency.max),
        int(r.achievedRate),
        String(r.delivery.lost),
      ];
    }),
  };
}

export const BROKER_LABELS: Record<BrokerKind, string> = {
  mosquitto: 'Mosquitto',
  embedded: 'embedded broker over TCP',
};

function tcpTable(tcp: TcpReport): Table {
  return {
    headers: ['broker', 'case', 'N', 'ours msg/s', 'core msg/s', 'ours/core', 'lost'],
    align: ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
    rows: tcp.cases.map((c) => [
      BROKER_LABELS[c.broker],
      caseLabel(c.qos, c.size),
      int(c.messages),
      int(c.variants.tcp?.rate ?? NaN),
      int(c.variants.core?.rate ?? NaN),
      ratio(c.ratios.tcp),
      lostCell(c),
    ]),
  };
}

/** The sections of the `tcp` job: title, table, the note under it. */
function tcpSections(tcp: TcpReport, settings: Settings): { title: string; table: Table; note?: string }[] {
  const sections: { title: string; table: Table; note?: string }[] = [];
  if (tcp.cases.length)
    sections.push({
      title:
        'Through a broker over TCP loopback (out → broker → in, msg/s received): ours (broker config over mqtt://) vs core',
      table: tcpTable(tcp),
      note: 'Mosquitto started by the job with max_inflight_messages 0; the embedded broker node listening on 127.0.0.1, ours connected over TCP, not the in-process link.',
    });
  if (tcp.persistence.some((c) => c.modes.queued || c.modes.acknowledged))
    sections.push({
      title: 'Persistence of our out node through Mosquitto (msg/s received; none is the row above)',
      table: durableTable(tcp.persistence),
    });
  if (Object.keys(tcp.latency).length)
    sections.push({
      title: `Latency through Mosquitto at ${int(settings.latencyRate)} msg/s, QoS 1, 64 B, ${settings.latencySeconds} s`,
      table: latencyTable(tcp.latency),
    });
  return sections;
}

function targetTable(report: BenchReport): Table {
  return {
    headers: ['target', 'goal', 'now', 'met'],
    align: ['l', 'l', 'r', 'l'],
    rows: report.targets.map((t) => [t.what, t.goal, t.value, metCell(t)]),
  };
}

function metCell(t: Target): string {
  if (t.met === undefined) return '–';
  if (t.ceiling) return t.met ? 'within reach' : 'OUT OF REACH';
  return t.met ? 'yes' : 'NO';
}

/** What each ceiling means for its goal, with the figures. */
function ceilingLines(ceilings: Ceiling[]): string[] {
  return ceilings.map((c) => {
    const figures =
      `Node-RED alone (no MQTT) moved ${int(c.floorRate)} msg/s through the same flow shape, ` +
      `${c.ratio.toFixed(2)}× core's ${int(c.coreRate)} msg/s`;
    return c.reachable
      ? `${caseLabel(c.qos, c.size)}: ${figures}: ours/core ≥ ${c.goal}× is within that ceiling`
      : `${caseLabel(c.qos, c.size)}: ours/core ≥ ${c.goal}× is OUT OF REACH for any MQTT node pair: ${figures}`;
  });
}

/** What follows a soak's label when its out node has an outbox (`--soak-persistence`). */
export function soakPersistenceLabel(persistence: Persistence | undefined): string {
  return persistence === undefined || persistence === 'none' ? '' : `, persistence ${persistence}`;
}

function soakLines(soak: SoakSummary, settings: Settings): string[] {
  const r = soak.result;
  return [
    `${VARIANT_LABELS[settings.soakVariant]}${soakPersistenceLabel(settings.soakPersistence)}, QoS 1, 64 B, asked ${int(settings.soakRate)} msg/s for ${settings.soakSeconds} s ` +
      `(sent ${int(r.achievedRate)} msg/s, ${int(r.delivery.received)} received, ${r.delivery.lost} lost), ` +
      `RSS sampled every 5 s${r.gcForced ? ' after a forced gc' : ''}`,
    `RSS first ${soak.firstMB.toFixed(1)} MB, last ${soak.lastMB.toFixed(1)} MB, max ${soak.maxMB.toFixed(1)} MB; ` +
      `growth ${soak.growthMB >= 0 ? '+' : ''}${soak.growthMB.toFixed(1)} MB (${soak.growthPercent.toFixed(1)} %), ` +
      `trend ${soak.slopeMBPerMinute.toFixed(2)} MB/min; latency p50 ${ms(r.latency.p50)} ms, p99 ${ms(r.latency.p99)} ms`,
    `verdict: ${soak.leak ? 'RSS GREW (≥ 10 % and ≥ 20 MB): possible leak' : 'no leak (growth < 10 % or < 20 MB)'}`,
  ];
}

function machineLines(report: BenchReport): string[] {
  const m = report.machine;
  const s = report.settings;
  return [
    `${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, ${m.os}`,
    `Node.js ${m.node}, Node-RED ${m.nodeRed}, Aedes ${m.aedes}, MQTT.js ${m.mqttOurs} (ours) / ${m.mqttCore} (core nodes)`,
    `durable-mqtt at ${m.revision}`,
    `${report.startedAt}, ${Math.round(report.durationSeconds)} s; window ${s.window} outstanding, ` +
      `${s.repeat === 1 ? 'one run per case' : `median of ${s.repeat} runs`}, scale ${s.scale}`,
  ];
}

export function renderText(report: BenchReport): string {
  const out: string[] = [];
  out.push('durable-mqtt benchmark', ...machineLines(report), '');
  if (report.throughput.length) {
    out.push(
      'Throughput (out → embedded broker → in → sink, msg/s received; ' +
        `ours embedded: ${report.settings.embeddedMessagesFactor} × N; ` +
        `Node-RED alone: junction → sink, no MQTT, N = ${int(report.settings.floorMessages)})`,
      textTable(throughputTable(report)),
      '',
    );
    out.push('RSS after each throughput case (MB)', textTable(memoryTable(report)), '');
  }
  if (report.durable.length) {
    out.push(
      `Persistence of our out node (ours embedded, ${report.settings.embeddedMessagesFactor} × N each, msg/s received; peak RSS MB)`,
      textTable(durableTable(report.durable)),
      DURABLE_NOTE,
      '',
    );
  }
  if (report.receipts.length) {
    out.push(
      'End-to-end acknowledgment: until broker vs until subscriber',
      textTable(receiptsTable(report)),
      receiptsNote(report.settings),
      '',
    );
  }
  if (report.clients.length) {
    out.push(
      'Embedded broker serving MQTT.js clients over TCP: MQTT 3.1.1 vs MQTT 5, and Mosquitto',
      textTable(clientsTable(report)),
      CLIENTS_NOTE,
      '',
    );
  }
  if (report.scale)
    out.push(
      'Many TCP clients, embedded broker vs Mosquitto, and two memory references',
      textTable(scaleTable(report.scale)),
      scaleNote(report.scale),
      '',
    );
  if (report.backlog) {
    out.push(
      'Offline backlog in a node-red process (persistence queued, broker unreachable)',
      textTable(backlogTable(report.backlog)),
      ...backlogLines(report.backlog),
      '',
    );
  }
  if (report.dedupe.length) {
    out.push(
      `Dedupe node, maxEntries ${int(report.dedupe[0].maxEntries)} (msg/s through the node)`,
      textTable(dedupeTable(report)),
      DEDUPE_METHOD,
      '',
    );
  }
  if (Object.keys(report.latency).length) {
    out.push(
      `Latency at ${int(report.settings.latencyRate)} msg/s, QoS 1, 64 B, ${report.settings.latencySeconds} s`,
      textTable(latencyTable(report.latency)),
      '',
    );
  }
  for (const section of report.tcp ? tcpSections(report.tcp, report.settings) : [])
    out.push(section.title, textTable(section.table), ...(section.note ? [section.note] : []), '');
  if (report.soak) out.push('Soak', ...soakLines(report.soak, report.settings), '');
  if (report.targets.length)
    out.push('Targets', textTable(targetTable(report)), ...ceilingLines(report.ceilings), '');
  if (report.problems.length) out.push('Problems seen', ...report.problems.map((p) => `- ${p}`), '');
  if (report.failures.length) out.push('Failed jobs', ...report.failures.map((f) => `- ${f}`), '');
  return out.join('\n');
}

export function renderMarkdown(report: BenchReport): string {
  const out: string[] = [];
  out.push('### Benchmark', '', ...machineLines(report).map((l) => `${l}  `), '');
  if (report.throughput.length) {
    out.push(
      'Throughput, messages per second received (out → embedded broker → in; Node-RED alone: a junction ' +
        `in place of the MQTT nodes, no broker, N = ${int(report.settings.floorMessages)}; ours embedded ` +
        `sends ${report.settings.embeddedMessagesFactor} × N):`,
      '',
    );
    out.push(markdownTable(throughputTable(report)), '');
    out.push('RSS of the Node-RED process after each case, MB:', '', markdownTable(memoryTable(report)), '');
  }
  if (report.durable.length) {
    out.push(
      `Persistence of our out node, messages per second received (ours embedded, ${report.settings.embeddedMessagesFactor} × N each; peak RSS in MB):`,
      '',
      markdownTable(durableTable(report.durable)),
      '',
      DURABLE_NOTE,
      '',
    );
  }
  if (report.receipts.length) {
    out.push(
      'End-to-end acknowledgment, until broker vs until subscriber:',
      '',
      markdownTable(receiptsTable(report)),
      '',
      receiptsNote(report.settings),
      '',
    );
  }
  if (report.clients.length) {
    out.push(
      'Embedded broker serving MQTT.js clients over TCP, MQTT 3.1.1 vs MQTT 5, and Mosquitto, messages per second received:',
      '',
      markdownTable(clientsTable(report)),
      '',
      CLIENTS_NOTE,
      '',
    );
  }
  if (report.scale)
    out.push(
      'Many TCP clients, embedded broker vs Mosquitto, and two memory references:',
      '',
      markdownTable(scaleTable(report.scale)),
      '',
      scaleNote(report.scale),
      '',
    );
  if (report.backlog) {
    out.push(
      'Offline backlog in a node-red process (persistence queued, broker unreachable):',
      '',
      markdownTable(backlogTable(report.backlog)),
      '',
      ...backlogLines(report.backlog).map((l) => `- ${l}`),
      '',
    );
  }
  if (report.dedupe.length) {
    out.push(
      `Dedupe node, maxEntries ${int(report.dedupe[0].maxEntries)}, messages per second through the node:`,
      '',
      markdownTable(dedupeTable(report)),
      '',
      `- ${DEDUPE_METHOD}`,
      '',
    );
  }
  if (Object.keys(report.latency).length) {
    out.push(
      `Latency at ${int(report.settings.latencyRate)} msg/s, QoS 1, 64 B, ${report.settings.latencySeconds} s:`,
      '',
      markdownTable(latencyTable(report.latency)),
      '',
    );
  }
  for (const section of report.tcp ? tcpSections(report.tcp, report.settings) : [])
    out.push(
      `${section.title}:`,
      '',
      markdownTable(section.table),
      '',
      ...(section.note ? [section.note, ''] : []),
    );
  if (report.soak) out.push('Soak:', '', ...soakLines(report.soak, report.settings).map((l) => `- ${l}`), '');
  if (report.targets.length) {
    out.push('Targets:', '', markdownTable(targetTable(report)), '');
    if (report.ceilings.length) out.push(...ceilingLines(report.ceilings).map((l) => `- ${l}`), '');
  }
  if (report.problems.length) out.push('Problems seen:', '', ...report.problems.map((p) => `- ${p}`), '');
  if (report.failures.length) out.push('Failed jobs:', '', ...report.failures.map((f) => `- ${f}`), '');
  return out.join('\n');
}

/** One line per problem a job reported, prefixed with where it happened. */
export function problemLines(where: string, problems: Problems): string[] {
  const lines: string[] = [];
  if (problems.logErrors)
    lines.push(
      `${where}: ${problems.logErrors} errors logged by Node-RED, e.g. ${problems.logSamples.join(' | ')}`,
    );
  else if (problems.logWarnings)
    lines.push(
      `${where}: ${problems.logWarnings} warnings logged by Node-RED, e.g. ${problems.logSamples.join(' | ')}`,
    );
  if (problems.brokerClientErrors)
    lines.push(
      `${where}: the embedded broker reported ${problems.brokerClientErrors} client errors, e.g. ${problems.brokerSamples.join(' | ')}`,
    );
  for (const warning of problems.processWarnings) lines.push(`${where}: ${warning}`);
  return lines;
}
