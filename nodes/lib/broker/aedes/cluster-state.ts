/**
 * What the embedded brokers sharing one Redis must agree on beyond Aedes' own persistence:
 * which client ids are connected (and to which broker), when each MQTT 5 session left behind
 * expires, and how long each offline queue is. Aedes keeps the first two in each broker's memory,
 * which a cluster cannot see: a broker would trim the queue of a client connected to another, and
 * a session whose broker stopped before its expiry interval ended would never expire.
 *
 * Each decision that reads and writes is one Lua script, so that two brokers deciding at once
 * see each other's writes. The clock is Redis' own (TIME): the brokers' clocks may differ.
 */
import type { Redis } from 'ioredis';

/** Client id → id of the broker it is connected to. */
const CONNECTED_KEY = 'durable-mqtt:connected';
/** Client id scored by the time (ms, Redis' clock) its session expires. */
const SESSION_EXPIRY_KEY = 'durable-mqtt:session-expiry';
/** `<prefix><broker id>` exists while that broker runs: a crashed broker's clients stop counting as connected. */
const ALIVE_PREFIX = 'durable-mqtt:broker-alive:';
/** The ids of the brokers that announced themselves, until another finds them stopped. */
const BROKERS_KEY = 'durable-mqtt:brokers';
/** `<prefix><broker id>`: the client ids connected to that broker, for when it stops without saying so. */
const BROKER_CLIENTS_PREFIX = 'durable-mqtt:broker-clients:';
/** Client id → Session Expiry Interval (s) of a connected MQTT 5 client whose session expires. */
const SESSION_INTERVAL_KEY = 'durable-mqtt:session-interval';
/** aedes-persistence-redis' outgoing queue of a client: a list of packet keys, oldest first. */
const OUTGOING_PREFIX = 'outgoing:';

/** How long a broker counts as running after its last heartbeat. */
const ALIVE_TTL_MS = 15_000;
const HEARTBEAT_INTERVAL_MS = 5000;

/** The most expired sessions one sweep hands out. */
const SWEEP_BATCH = 100;

// Shared by the scripts: KEYS[1] is CONNECTED_KEY. The broker id a client is connected to,
// if that broker still runs.
const CONNECTED_TO = `
local function connectedTo(clientId)
  local broker = redis.call('HGET', KEYS[1], clientId)
  if broker and redis.call('EXISTS', '${ALIVE_PREFIX}' .. broker) == 1 then return broker end
  return false
end
local function nowMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`;

const SCRIPTS = {
  /**
   * KEYS[2], KEYS[3]: SESSION_EXPIRY_KEY, SESSION_INTERVAL_KEY. ARGV: client id, broker id, the
   * session's expiry interval (s) or '' when it has none to time. The session is live again.
   */
  clusterClientCame: {
    numberOfKeys: 3,
    lua: `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', '${BROKER_CLIENTS_PREFIX}' .. ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == '' then redis.call('HDEL', KEYS[3], ARGV[1]) else redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
return 0`,
  },
  /**
   * KEYS[2]: SESSION_INTERVAL_KEY. ARGV: client id, broker id. The connection that ends is this
   * broker's, not a newer one to another broker.
   */
  clusterClientGone: {
    numberOfKeys: 2,
    lua: `
redis.call('SREM', '${BROKER_CLIENTS_PREFIX}' .. ARGV[2], ARGV[1])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0`,
  },
  /** KEYS[1]: BROKERS_KEY. ARGV: broker id, time to live (ms). 0 when the broker counted as stopped. */
  clusterBeat: {
    numberOfKeys: 1,
    lua: `
local alive = '${ALIVE_PREFIX}' .. ARGV[1]
local was = redis.call('EXISTS', alive)
redis.call('SET', alive, '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
return was`,
  },
  /**
   * KEYS[2]: SESSION_EXPIRY_KEY. ARGV: client id, interval (s). Records when the session expires,
   * unless the client is connected again (to another broker, which took the session over).
   * Returns the interval in ms, or -1 when nothing was recorded.
   */
  clusterExpireLater: {
    numberOfKeys: 2,
    lua: `${CONNECTED_TO}
if connectedTo(ARGV[1]) then return -1 end
local interval = tonumber(ARGV[2]) * 1000
redis.call('ZADD', KEYS[2], nowMs() + interval, ARGV[1])
return interval`,
  },
  /** ARGV: client id. The id of the running broker it is connected to, or ''. */
  clusterConnectedTo: {
    numberOfKeys: 1,
    lua: `${CONNECTED_TO}
return connectedTo(ARGV[1]) or ''`,
  },
  /** KEYS[2]: SESSION_EXPIRY_KEY. ARGV: client id. 1 when its session had expired (the entry is taken). */
  clusterClaimExpired: {
    numberOfKeys: 2,
    lua: `${CONNECTED_TO}
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline or tonumber(deadline) > nowMs() then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if connectedTo(ARGV[1]) then return 0 end
return 1`,
  },
  /**
   * KEYS[2], KEYS[3], KEYS[4]: SESSION_EXPIRY_KEY, BROKERS_KEY, SESSION_INTERVAL_KEY. The clients
   * of a broker that stopped without saying so (crashed, or cut off from Redis) are disconnected:
   * their sessions expire from now. Then takes every session past its expiry and returns the ids
   * of those whose client is not connected (a connected one resumed its session: its entry was stale).
   */
  clusterTakeExpired: {
    numberOfKeys: 4,
    lua: `${CONNECTED_TO}
local now = nowMs()
for _, broker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', '${ALIVE_PREFIX}' .. broker) == 0 then
    local clients = '${BROKER_CLIENTS_PREFIX}' .. broker
    for _, clientId in ipairs(redis.call('SMEMBERS', clients)) do
      if redis.call('HGET', KEYS[1], clientId) == broker then
        redis.call('HDEL', KEYS[1], clientId)
        local interval = redis.call('HGET', KEYS[4], clientId)
        if interval then
          redis.call('ZADD', KEYS[2], now + tonumber(interval) * 1000, clientId)
          redis.call('HDEL', KEYS[4], clientId)
        end
      end
    end
    redis.call('DEL', clients)
    redis.call('SREM', KEYS[3], broker)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ${SWEEP_BATCH})
local expired = {}
for _, clientId in ipairs(due) do
  redis.call('ZREM', KEYS[2], clientId)
  if not connectedTo(clientId) then table.insert(expired, clientId) end
end
return expired`,
  },
  /**
   * ARGV: the bound, then pairs of client id and queue key. For each client not connected, removes
   * the oldest messages not yet sent (entries 'packet:<broker>:<counter>', as the persistence counts
   * them) until the queue holds the bound; an entry of a QoS 2 exchange left half-way (PUBREL) stays.
   * Returns pairs of client id and the removed message as stored.
   */
  clusterTrimQueues: {
    numberOfKeys: 1,
    lua: `${CONNECTED_TO}
local bound = tonumber(ARGV[1])
local dropped = {}
for i = 2, #ARGV, 2 do
  local clientId, queue = ARGV[i], ARGV[i + 1]
  if not connectedTo(clientId) then
    local length = redis.call('LLEN', queue)
    local index = 0
    while length > bound do
      local entry = redis.call('LINDEX', queue, index)
      if not entry then break end
      if string.sub(entry, 1, 7) == 'packet:' then
        local packet = redis.call('GET', entry)
        redis.call('LREM', queue, 1, entry)
        length = length - 1
        -- The persistence keeps a message until every queue that held it is done with it.
        if redis.call('DECR', entry .. ':offlineCount') <= 0 then
          redis.call('DEL', entry, entry .. ':offlineCount')
        end
        if packet then
          table.insert(dropped, clientId)
          table.insert(dropped, packet)
        end
      else
        index = index + 1
      end
    end
  end
end
return dropped`,
  },
} as const;

/** The connection with the scripts above defined on it (ioredis adds a method per script, and a *Buffer one). */
interface ScriptedRedis {
  clusterClientCame(
    connected: string,
    expiry: string,
    intervals: string,
    clientId: string,
    brokerId: string,
    seconds: number | '',
  ): Promise<number>;
  clusterClientGone(
    connected: string,
    intervals: string,
    clientId: string,
    brokerId: string,
  ): Promise<number>;
  clusterBeat(brokers: string, brokerId: string, ttlMs: number): Promise<number>;
  clusterExpireLater(connected: string, expiry: string, clientId: string, seconds: number): Promise<number>;
  clusterClaimExpired(connected: string, expiry: string, clientId: string): Promise<number>;
  clusterConnectedTo(connected: string, clientId: string): Promise<string>;
  clusterTakeExpired(
    connected: string,
    expiry: string,
    brokers: string,
    intervals: string,
  ): Promise<string[]>;
  clusterTrimQueuesBuffer(connected: string, bound: number, ...clientsAndQueues: string[]): Promise<Buffer[]>;
}

/** The cluster's shared view, as one broker (`brokerId`) reads and writes it. */
export class ClusterState {
  private readonly redis: Redis & ScriptedRedis;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    redis: Redis,
    private readonly brokerId: string,
  ) {
    for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
    this.redis = redis as Redis & ScriptedRedis;
  }

  /**
   * Announces this broker as running, and keeps announcing it until stop(). `lapsed` is called when
   * the broker had counted as stopped (Redis was out of reach, or restarted, for too long): what it
   * said of its clients may be gone, and must be said again.
   */
  async start(lapsed: () => void): Promise<void> {
    const beat = () => this.redis.clusterBeat(BROKERS_KEY, this.brokerId, ALIVE_TTL_MS);
    await beat();
    this.heartbeat = setInterval(
      () =>
        void beat().then(
          (was) => was || lapsed(),
          () => undefined,
        ),
      HEARTBEAT_INTERVAL_MS,
    );
    this.heartbeat.unref();
  }

  /**
   * Stops the heartbeat; this broker's clients stop counting as connected (they have disconnected
   * by now; another broker forgets the broker). Sent, not awaited: with Redis away a command waits
   * for it, and a broker closes at once.
   */
  stop(): void {
    clearInterval(this.heartbeat);
    void this.redis.del(`${ALIVE_PREFIX}${this.brokerId}`).catch(() => undefined);
  }

  /**
   * `clientId` connected to this broker: its session is live, whatever deadline it had; with
   * `expirySeconds`, it expires that long after the client leaves, even if this broker stops first.
   * Sent without awaiting, before anything else this broker asks about the client: Redis answers
   * one connection's commands in order, so the persistence reads the client's session after this.
   */
  clientConnected(clientId: string, expirySeconds: number | undefined): Promise<unknown> {
    return this.redis.clusterClientCame(
      CONNECTED_KEY,
      SESSION_EXPIRY_KEY,
      SESSION_INTERVAL_KEY,
      clientId,
      this.brokerId,
      expirySeconds ?? '',
    );
  }

  /** `clientId`'s connection to this broker ended (a newer one to another broker stays recorded). */
  clientDisconnected(clientId: string): Promise<unknown> {
    return this.redis.clusterClientGone(CONNECTED_KEY, SESSION_INTERVAL_KEY, clientId, this.brokerId);
  }

  /**
   * Records that `clientId`'s session expires in `seconds`, unless the client is connected to a
   * broker again. Resolves with the interval in ms, or undefined when nothing was recorded.
   */
  async expireLater(clientId: string, seconds: number): Promise<number | undefined> {
    const ms = await this.redis.clusterExpireLater(CONNECTED_KEY, SESSION_EXPIRY_KEY, clientId, seconds);
    return ms < 0 ? undefined : ms;
  }

  /** Whether `clientId` is connected to another running broker of the cluster. */
  async connectedElsewhere(clientId: string): Promise<boolean> {
    const broker = await this.redis.clusterConnectedTo(CONNECTED_KEY, clientId);
    return broker !== '' && broker !== this.brokerId;
  }

  /** Whether `clientId`'s session has expired; if so, the caller is the one broker to end it. */
  async claimExpired(clientId: string): Promise<boolean> {
    return (await this.redis.clusterClaimExpired(CONNECTED_KEY, SESSION_EXPIRY_KEY, clientId)) === 1;
  }

  /** The clients whose sessions have expired (up to a batch), each handed to one broker only. */
  takeExpired(): Promise<string[]> {
    return this.redis.clusterTakeExpired(
      CONNECTED_KEY,
      SESSION_EXPIRY_KEY,
      BROKERS_KEY,
      SESSION_INTERVAL_KEY,
    );
  }

  /** How many entries `clientId`'s outgoing queue holds, messages in flight included. */
  queueLength(clientId: string): Promise<number> {
    return this.redis.llen(outgoingKey(clientId));
  }

  /**
   * Trims the queues of `clientIds` that are not connected to any broker to `bound` entries.
   * Resolves with each message removed, as the persistence stored it.
   */
  async trimQueues(clientIds: string[], bound: number): Promise<{ clientId: string; stored: Buffer }[]> {
    const pairs = clientIds.flatMap((clientId) => [clientId, outgoingKey(clientId)]);
    const reply = await this.redis.clusterTrimQueuesBuffer(CONNECTED_KEY, bound, ...pairs);
    const dropped: { clientId: string; stored: Buffer }[] = [];
    for (let i = 0; i < reply.length; i += 2)
      dropped.push({ clientId: reply[i].toString(), stored: reply[i + 1] });
    return dropped;
  }
}

/** The key of `clientId`'s outgoing queue, as aedes-persistence-redis names it. */
function outgoingKey(clientId: string): string {
  return `${OUTGOING_PREFIX}${encodeURIComponent(clientId)}`;
}
