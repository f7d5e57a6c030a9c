/**
 * Who may do what on the monitor's routes, and how often. Node-RED's `needsPermission` answers
 * 401 to a user who lacks a permission; an action refused to a user who may read is told apart
 * here with 403, so the sidebar can say "read-only" rather than "log in again".
 */
import type { NextFunction, Request, Response } from 'express';

/**
 * Requests one user (or one address, when anonymous) may make in RATE_WINDOW_MS: the sidebar makes
 * one every WATCH_RENEW_MS, and a few more as someone clicks.
 */
export const RATE_LIMIT = 60;
export const RATE_WINDOW_MS = 10_000;

/** What Node-RED's authentication leaves on a request (none of it without adminAuth). */
interface AuthenticatedRequest extends Request {
  user?: { username?: string; anonymous?: boolean };
  authInfo?: { scope?: string | string[] };
}

/**
 * Whether `scope` grants `permission`, by the rules of Node-RED's own check
 * (@node-red/editor-api/lib/auth/permissions.js): `*`, the permission itself, or `read`/`write`
 * (and `*.read`/`*.write`) for any permission ending so; a list grants what one of its entries does.
 */
function grants(scope: string | string[], permission: string): boolean {
  if (Array.isArray(scope)) return scope.some((entry) => grants(entry, permission));
  if (scope === '*' || scope === permission) return true;
  if (scope === 'read' || scope === '*.read') return permission.endsWith('.read');
  if (scope === 'write' || scope === '*.write') return permission.endsWith('.write');
  return false;
}

/** Whether the request's user may act (and see payloads); without adminAuth, everyone may. */
export function mayWrite(req: Request): boolean {
  const { user, authInfo } = req as AuthenticatedRequest;
  if (!user) return true;
  return grants(authInfo?.scope ?? [], 'durable-mqtt.write');
}

/** 403 for a user who may read but not act; runs after Node-RED's check of the read permission. */
export function requireWrite(req: Request, res: Response, next: NextFunction): void {
  if (mayWrite(req)) return next();
  res.status(403).json({ error: 'the durable-mqtt.write permission is needed' });
}

/** The admin user's name, for the log; undefined when anonymous or without adminAuth. */
export function userName(req: Request): string | undefined {
  const { user } = req as AuthenticatedRequest;
  return user && !user.anonymous ? user.username : undefined;
}

/**
 * At most RATE_LIMIT requests per user (per address when anonymous) in each window of
 * RATE_WINDOW_MS; past that, 429 with the seconds to wait in Retry-After.
 */
export function rateLimiter(): (req: Request, res: Response, next: NextFunction) => void {
  const windows = new Map<string, { startedAt: number; count: number }>();
  return (req, res, next) => {
    const now = Date.now();
    const key = userName(req) !== undefined ? `user:${userName(req)}` : `address:${req.ip ?? ''}`;
    let window = windows.get(key);
    if (!window || now - window.startedAt >= RATE_WINDOW_MS) {
      // Windows that ended are forgotten as new ones open: the map holds the users of the last window.
      for (const [other, { startedAt }] of windows)
        if (now - startedAt >= RATE_WINDOW_MS) windows.delete(other);
      window = { startedAt: now, count: 0 };
      windows.set(key, window);
    }
    if (++window.count <= RATE_LIMIT) return next();
    const retryAfter = Math.max(1, Math.ceil((window.startedAt + RATE_WINDOW_MS - now) / 1000));
    res.setHeader('Retry-After', String(retryAfter));
    res.status(429).json({ error: `more than ${RATE_LIMIT} requests in ${RATE_WINDOW_MS / 1000} seconds` });
  };
}
