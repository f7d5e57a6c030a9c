/**
 * The monitor's admin routes (MONITOR_ROUTES in lib/monitor-protocol.ts) and its comms topic.
 * Views need `durable-mqtt.read`, actions `durable-mqtt.write` (403 for a user who may only read);
 * payload previews go to users who may write. Every route is rate-limited per user.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { NodeAPI } from 'node-red';
import {
  MONITOR_ROUTES,
  MONITOR_TOPIC,
  RETAINED_LIST_LIMIT,
  type RetainedListing,
} from '../../lib/monitor-protocol.js';
import { filterProblem, publishTopicProblem } from '../../lib/topic.js';
import { mayWrite, rateLimiter, requireWrite, userName } from './access.js';
import { previewOf } from './preview.js';
import { brokers, outboxes, quarantines } from './registry.js';
import { MonitorSampler } from './sampler.js';

type Handler = (req: Request, res: Response) => Promise<void>;

/** Runs an async handler; a failure answers 500 with its message. */
const answer =
  (handler: Handler): RequestHandler =>
  (req, res) => {
    handler(req, res).catch((error: Error) => {
      if (!res.headersSent) res.status(500).json({ error: error.message });
    });
  };

const notFound = (res: Response, what: string) => void res.status(404).json({ error: `no ${what}` });

const param = (req: Request, name: string): string => String(req.params[name] ?? '');
const query = (req: Request, name: string): string | undefined =>
  typeof req.query[name] === 'string' ? req.query[name] : undefined;

/** The Node-RED admin apps the routes are on: each node file asks, the first one adds them. */
const served = new WeakSet<object>();

/** Adds the monitor's routes to Node-RED's admin API, once per admin app. */
export function serveMonitor(RED: NodeAPI): void {
  if (served.has(RED.httpAdmin)) return;
  served.add(RED.httpAdmin);
  const sampler = new MonitorSampler((snapshot) => RED.comms.publish(MONITOR_TOPIC, snapshot, false));
  const limit = rateLimiter();
  const read = [RED.auth.needsPermission('durable-mqtt.read'), limit];
  const write = [...read, requireWrite];
  const admin = RED.httpAdmin;

  admin.post(MONITOR_ROUTES.watch, ...read, (_req, res) => {
    sampler.watch();
    res.status(204).end();
  });

  admin.get(
    MONITOR_ROUTES.snapshot,
    ...read,
    answer(async (_req, res) => void res.json(await sampler.snapshot())),
  );

  admin.get(
    MONITOR_ROUTES.retained,
    ...read,
    answer(async (req, res) => {
      const inspector = brokers.get(param(req, 'id'))?.broker.inspector;
      if (!inspector) return notFound(res, 'running embedded broker of that id');
      const filter = query(req, 'topic') ?? '#';
      const problem = filterProblem(filter);
      if (problem) return void res.status(400).json({ error: `topic filter: ${problem}` });
      const found = await inspector.retained(filter, RETAINED_LIST_LIMIT);
      const previews = mayWrite(req);
      const listing: RetainedListing = {
        messages: found.messages.map(({ topic, qos, payload }) => ({
          topic,
          qos,
          bytes: payload.length,
          ...(previews ? { preview: previewOf(payload) } : {}),
        })),
        truncated: found.truncated,
      };
      res.json(listing);
    }),
  );

  admin.delete(
    MONITOR_ROUTES.deleteRetained,
    ...write,
    answer(async (req, res) => {
      const inspector = brokers.get(param(req, 'id'))?.broker.inspector;
      if (!inspector) return notFound(res, 'running embedded broker of that id');
      const topic = query(req, 'topic');
      const problem = publishTopicProblem(topic);
      if (topic === undefined || problem) return void res.status(400).json({ error: `topic: ${problem}` });
      if (!(await inspector.deleteRetained(topic))) return notFound(res, 'retained message on that topic');
      res.status(204).end();
    }),
  );

  admin.post(MONITOR_ROUTES.retryOutbox, ...write, (req, res) => {
    const source = outboxes.get(param(req, 'id'));
    if (!source) return notFound(res, 'outbox of that id');
    source.retryNow();
    res.status(204).end();
  });

  admin.post(
    MONITOR_ROUTES.purgeOutbox,
    ...write,
    answer(async (req, res) => {
      const source = outboxes.get(param(req, 'id'));
      if (!source) return notFound(res, 'outbox of that id');
      res.json({ purged: await source.purge(userName(req) ?? '') });
    }),
  );

  for (const action of ['release', 'discard'] as const) {
    const route =
      action === 'release' ? MONITOR_ROUTES.releaseQuarantined : MONITOR_ROUTES.discardQuarantined;
    admin.post(
      route,
      ...write,
      answer(async (req, res) => {
        const source = quarantines.get(param(req, 'id'));
        if (!source) return notFound(res, 'quarantine of that id');
        const key: unknown = (req.body as { key?: unknown } | undefined)?.key;
        if (typeof key !== 'string' || key === '')
          return void res.status(400).json({ error: 'key: a string' });
        if (!(await source[action](key))) return notFound(res, 'quarantined message of that key');
        res.status(204).end();
      }),
    );
  }
}
