/**
 * The embedded broker node's access settings, as the flow and its credentials
 * hold them, turned into an AccessConfig.
 *
 * In the flow: `accounts` ([{username, publish, subscribe}]; Node-RED keeps `users`
 * for itself), `allowAnonymous`, `allowAnonymousFromNetwork`,
 * `anonymousPublish`, `anonymousSubscribe`. In the credentials: `passwords`, a
 * JSON object of password hashes by user name. The editor hashes a new password
 * through the runtime before saving, so the plain text is never stored; a plain
 * value found there anyway (a hand-edited flow) is hashed here and stored back.
 * Earlier versions had one user in the credentials `user` and `password` (plain):
 * it becomes a user allowed everything, its password hashed the same way.
 */
import type { AccessConfig, BrokerUser, TopicRules } from './access-control.js';
import { hashPassword, isPasswordHash } from './passwords.js';
import { readBoolean } from '../config-values.js';

export interface AccessSettings {
  accounts?: unknown;
  allowAnonymous?: unknown;
  /** Whether anonymous clients may connect from other machines too (default: from this one only). */
  allowAnonymousFromNetwork?: unknown;
  anonymousPublish?: unknown;
  anonymousSubscribe?: unknown;
}

export interface AccessCredentials {
  passwords?: string;
  /** The single user of earlier versions. */
  user?: string;
  password?: string;
}

export interface ResolvedAccess {
  config: AccessConfig;
  /** The credentials to store in place of the current ones, when a plain password was hashed. */
  credentialsToStore: AccessCredentials | undefined;
  /** Users with no password: nobody can log in as them. */
  usersWithoutPassword: string[];
}

const EVERYTHING = ['#'];

/** Topic patterns from the flow: an array of strings, or one string of patterns separated by commas or lines. */
export function readPatterns(value: unknown, fallback: string[]): string[] {
  const list = typeof value === 'string' ? value.split(/[,\n]/) : Array.isArray(value) ? value : undefined;
  if (!list) return fallback;
  return list
    .filter((item): item is string => typeof item === 'string')
    .map((item) => item.trim())
    .filter(Boolean);
}

function readRules(source: Record<string, unknown>, publishKey: string, subscribeKey: string): TopicRules {
  return {
    publish: readPatterns(source[publishKey], EVERYTHING),
    subscribe: readPatterns(source[subscribeKey], EVERYTHING),
  };
}

function readPasswordMap(text: string | undefined): Record<string, string> {
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '',
      ),
    );
  } catch {
    return {};
  }
}

export async function resolveAccess(
  settings: AccessSettings,
  credentials: AccessCredentials | undefined,
): Promise<ResolvedAccess> {
  const passwords = readPasswordMap(credentials?.passwords);
  let rewritten = false;
  const legacyUser = credentials?.user || (credentials?.password ? '' : undefined);
  let userEntries = Array.isArray(settings.accounts) ? (settings.accounts as unknown[]) : undefined;
  if (legacyUser !== undefined) {
    userEntries ??= [{ username: legacyUser }];
    if (credentials?.password) {
      passwords[legacyUser] ??= credentials.password;
      rewritten = true;
    }
  }
  const users: BrokerUser[] = [];
  const seen = new Set<string>();
  for (const entry of userEntries ?? []) {
    if (!entry || typeof entry !== 'object') continue;
    const record = entry as Record<string, unknown>;
    if (typeof record.username !== 'string' || seen.has(record.username)) continue;
    seen.add(record.username);
    users.push({
      username: record.username,
      passwordHash: undefined,
      ...readRules(record, 'publish', 'subscribe'),
    });
  }
  for (const user of users) {
    const stored = passwords[user.username];
    if (stored !== undefined && !isPasswordHash(stored)) {
      passwords[user.username] = await hashPassword(stored);
      rewritten = true;
    }
    user.passwordHash = passwords[user.username];
  }
  // A flow from before the setting: anonymous clients as then, when there is no user.
  const allowAnonymous = readBoolean(settings.allowAnonymous, users.length === 0);
  const config: AccessConfig = {
    users,
    anonymous: allowAnonymous
      ? readRules(settings as Record<string, unknown>, 'anonymousPublish', 'anonymousSubscribe')
      : undefined,
    anonymousFromNetwork: readBoolean(settings.allowAnonymousFromNetwork, false),
  };
  let credentialsToStore: AccessCredentials | undefined;
  if (rewritten) {
    // The plain password goes: only its hash is stored from now on.
    credentialsToStore = { ...credentials, passwords: JSON.stringify(passwords) };
    delete credentialsToStore.password;
  }
  return {
    config,
    credentialsToStore,
    usersWithoutPassword: users.filter((user) => !user.passwordHash).map((user) => user.username),
  };
}
