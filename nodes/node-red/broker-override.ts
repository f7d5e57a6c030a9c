import type {
  ConnectionOptions,
  Endpoint,
  LifecycleMessage,
  QoS,
  TlsOptions,
} from '../lib/connection/types.js';
import { readQos } from '../lib/config-values.js';
import { publishTopicProblem } from '../lib/topic.js';

/**
 * The keys of msg.broker that a connect action may change, named as the core mqtt nodes name them
 * (their broker node's setOptions), so that a flow written for those works here. Keys of theirs
 * with no meaning here (verifyservercert, autoUnsubscribe, topicAliasMaximum, …) are refused
 * rather than ignored, so that nobody believes they took effect.
 */
export const BROKER_OVERRIDE_KEYS = [
  'url',
  'broker',
  'port',
  'usetls',
  'clientid',
  'protocolVersion',
  'compatmode',
  'keepalive',
  'cleansession',
  'sessionExpiry',
  'sessionExpiryInterval',
  'username',
  'password',
  'birth',
  'close',
  'will',
  'force',
] as const;
type OverrideKey = (typeof BROKER_OVERRIDE_KEYS)[number];

/** Why msg.broker cannot be applied; the node file translates it. */
export class BrokerOverrideError extends Error {
  constructor(
    readonly key: string,
    readonly problem: 'not-an-object' | 'unknown' | 'invalid' | 'embedded',
  ) {
    super(`msg.broker.${key}: ${problem}`);
    this.name = 'BrokerOverrideError';
  }
}

export interface BrokerOverride {
  options: ConnectionOptions;
  /** Cycle a connection that is up (core's `force`), rather than refuse. */
  force: boolean;
  /** The keys given, for the log: never their values, which may be credentials. */
  keys: OverrideKey[];
}

const URL_TRANSPORTS: Record<string, 'mqtt' | 'mqtts' | 'ws' | 'wss'> = {
  'mqtt:': 'mqtt',
  'tcp:': 'mqtt',
  'mqtts:': 'mqtts',
  'ssl:': 'mqtts',
  'tls:': 'mqtts',
  'ws:': 'ws',
  'wss:': 'wss',
};
const DEFAULT_PORTS = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 } as const;

type NetworkEndpoint = Exclude<Endpoint, { transport: 'embedded' }>;

function fail(key: string, problem: BrokerOverrideError['problem'] = 'invalid'): never {
  throw new BrokerOverrideError(key, problem);
}

function integer(key: string, value: unknown, min: number, max: number): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) fail(key);
  return number;
}

function boolean(key: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return fail(key);
}

function text(key: string, value: unknown): string {
  if (typeof value !== 'string') fail(key);
  return value;
}

/** A birth, close or will message from `{topic, payload, qos, retain}`; none for a value without a topic. */
function lifecycle(key: string, value: unknown): LifecycleMessage | undefined {
  if (value === null || value === undefined || value === false) return undefined;
  if (typeof value !== 'object') fail(key);
  const { topic, payload, qos, retain } = value as Record<string, unknown>;
  if (topic === undefined || topic === '') return undefined;
  if (typeof topic !== 'string' || publishTopicProblem(topic)) fail(key);
  const messageQos = qos === undefined ? 0 : readQos(qos);
  if (messageQos === undefined) fail(key);
  const body =
    payload === undefined || payload === null
      ? ''
      : typeof payload === 'string'
        ? payload
        : JSON.stringify(payload);
  return {
    topic,
    payload: body,
    qos: messageQos as QoS,
    retain: retain === undefined ? false : boolean(key, retain),
  };
}

/** Where `url` points, with the user name and password it may carry. */
function parseUrl(key: string, value: unknown, tlsOf: (transport: string) => TlsOptions | undefined) {
  let url: URL;
  try {
    url = new URL(text(key, value));
  } catch {
    return fail(key);
  }
  const transport = URL_TRANSPORTS[url.protocol] ?? fail(key);
  const endpoint: NetworkEndpoint = {
    transport,
    host: url.hostname || 'localhost',
    port: url.port ? Number(url.port) : DEFAULT_PORTS[transport],
  };
  if (transport === 'ws' || transport === 'wss') endpoint.path = url.pathname || '/mqtt';
  return {
    endpoint,
    tls: tlsOf(transport),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
}

/**
 * `current` with what msg.broker changes; throws BrokerOverrideError for an unknown key or a value
 * that cannot be used, before anything changes. `tlsOf` gives the config's TLS settings for a
 * transport that needs them. An embedded broker config takes a new endpoint only from `url` or
 * `broker`: a port or TLS alone mean nothing to it.
 */
export function applyBrokerOverride(
  current: ConnectionOptions,
  value: unknown,
  tlsOf: (transport: string) => TlsOptions | undefined,
): BrokerOverride {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail('', 'not-an-object');
  const given = value as Record<string, unknown>;
  const keys = Object.keys(given);
  const unknownKey = keys.find((key) => !(BROKER_OVERRIDE_KEYS as readonly string[]).includes(key));
  if (unknownKey !== undefined) fail(unknownKey, 'unknown');
  const options: ConnectionOptions = { ...current };
  const has = (key: OverrideKey) => Object.prototype.hasOwnProperty.call(given, key);

  let endpoint: Endpoint = current.endpoint;
  const setNetwork = (next: NetworkEndpoint, tls: TlsOptions | undefined) => {
    endpoint = next;
    if (tls) options.tls = tls;
    else delete options.tls;
  };
  const hostValue = has('broker') ? text('broker', given.broker).trim() : undefined;
  if (has('url') || hostValue?.includes('://')) {
    const key = has('url') ? 'url' : 'broker';
    const parsed = parseUrl(key, has('url') ? given.url : hostValue, tlsOf);
    setNetwork(parsed.endpoint, parsed.tls);
    if (parsed.username !== undefined) options.username = parsed.username;
    if (parsed.password !== undefined) options.password = parsed.password;
  } else if (hostValue !== undefined) {
    const base: NetworkEndpoint =
      endpoint.transport === 'embedded' ? { transport: 'mqtt', host: 'localhost', port: 1883 } : endpoint;
    setNetwork({ ...base, host: hostValue || 'localhost' }, tlsOf(base.transport));
  }
  if (has('port') || has('usetls')) {
    if (endpoint.transport === 'embedded') fail(has('port') ? 'port' : 'usetls', 'embedded');
    let transport = endpoint.transport;
    if (has('usetls')) {
      const secure = boolean('usetls', given.usetls);
      if (transport === 'mqtt' || transport === 'mqtts') transport = secure ? 'mqtts' : 'mqtt';
      else transport = secure ? 'wss' : 'ws';
    }
    const port = has('port') ? integer('port', given.port, 1, 65_535) : endpoint.port;
    setNetwork({ ...endpoint, transport, port }, tlsOf(transport));
  }
  options.endpoint = endpoint;

  if (has('clientid')) options.clientId = text('clientid', given.clientid).trim();
  if (has('compatmode') && boolean('compatmode', given.compatmode)) options.protocolVersion = 3;
  if (has('protocolVersion')) {
    options.protocolVersion = integer('protocolVersion', given.protocolVersion, 3, 5) as 3 | 4 | 5;
    // The embedded broker speaks MQTT 3.1 and 3.1.1 (Aedes 1.2).
    if (endpoint.transport === 'embedded' && options.protocolVersion === 5)
      fail('protocolVersion', 'embedded');
  }
  if (has('keepalive')) options.keepalive = integer('keepalive', given.keepalive, 0, 65_535);
  if (has('cleansession')) options.cleanSession = boolean('cleansession', given.cleansession);
  for (const key of ['sessionExpiry', 'sessionExpiryInterval'] as const) {
    if (!has(key)) continue;
    const seconds = integer(key, given[key], 0, 0xffffffff);
    if (seconds > 0) options.sessionExpiryInterval = seconds;
    else delete options.sessionExpiryInterval;
  }
  if (has('username')) options.username = text('username', given.username) || undefined;
  if (has('password')) options.password = text('password', given.password) || undefined;
  for (const key of ['birth', 'close', 'will'] as const)
    if (has(key)) options[key] = lifecycle(key, given[key]);
  const force = has('force') && boolean('force', given.force);
  return { options, force, keys: keys as OverrideKey[] };
}
