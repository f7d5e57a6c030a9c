/**
 * Topic access lists of the embedded broker: which topics a client may publish
 * to and which filters it may subscribe to, as MQTT filters in which `%u`
 * stands for the client's user name and `%c` for its client id.
 */
import { parseSharedFilter, topicMatches } from '../topic.js';

/** Who a connection says it is, from its CONNECT packet. */
export interface Identity {
  username: string | undefined;
  clientId: string;
}

const PLACEHOLDER = /%[uc]/g;
/** A value that would widen a pattern once put in it: `/` adds levels, `+` and `#` are wildcards. */
const UNSAFE_VALUE = /[/+#]/;

/**
 * The pattern with the identity put in, or undefined when it does not apply to
 * this identity: no user name for `%u`, an empty client id for `%c`, or a value
 * that would widen it (a client id `#` must not turn `devices/%c/#` into `devices/#/#`).
 */
function substitute(pattern: string, identity: Identity): string | undefined {
  let applicable = true;
  const result = pattern.replace(PLACEHOLDER, (placeholder) => {
    const value = placeholder === '%u' ? identity.username : identity.clientId;
    if (!value || UNSAFE_VALUE.test(value) || value.includes('\0')) applicable = false;
    return value ?? '';
  });
  return applicable ? result : undefined;
}

/**
 * Whether every topic that `filter` matches is also matched by `pattern`, so a
 * subscription to `filter` receives nothing the pattern does not allow.
 */
export function filterWithin(filter: string, pattern: string): boolean {
  const filterLevels = filter.split('/');
  const patternLevels = pattern.split('/');
  // [MQTT-4.7.2-1] a pattern starting with a wildcard does not reach $-topics.
  const dollar = filter.startsWith('$');
  for (let i = 0; i < patternLevels.length; i++) {
    const allowed = patternLevels[i];
    const asked = filterLevels[i];
    if (allowed === '#') return !(i === 0 && dollar);
    if (asked === undefined || asked === '#') return false;
    if (allowed === '+') {
      if (i === 0 && dollar) return false;
      continue;
    }
    if (asked === '+' || asked !== allowed) return false;
  }
  return filterLevels.length === patternLevels.length;
}

/** The topic patterns of one account for one direction (publish or subscribe). */
export class TopicAccess {
  private readonly fixed: string[];
  private readonly templates: string[];
  private readonly everything: boolean;

  constructor(patterns: readonly string[]) {
    const cleaned = patterns.map((pattern) => pattern.trim()).filter((pattern) => pattern !== '');
    this.fixed = cleaned.filter((pattern) => !pattern.includes('%'));
    this.templates = cleaned.filter((pattern) => pattern.includes('%'));
    this.everything = this.fixed.includes('#');
  }

  /** Whether `topic` may be published to. */
  allowsTopic(topic: string, identity: Identity): boolean {
    if (this.everything) return true;
    return this.patternsFor(identity).some((pattern) => topicMatches(pattern, topic));
  }

  /** Whether `filter` may be subscribed to; a shared subscription is judged by its inner filter. */
  allowsFilter(filter: string, identity: Identity): boolean {
    if (this.everything) return true;
    const inner = parseSharedFilter(filter)?.filter;
    if (inner === undefined) return false;
    return this.patternsFor(identity).some((pattern) => filterWithin(inner, pattern));
  }

  /** Whether the patterns include `#` alone, which an access list reads as everything, $-topics included. */
  get unrestricted(): boolean {
    return this.everything;
  }

  private patternsFor(identity: Identity): string[] {
    if (this.templates.length === 0) return this.fixed;
    const filled = this.templates
      .map((template) => substitute(template, identity))
      .filter((pattern): pattern is string => pattern !== undefined);
    return [...this.fixed, ...filled];
  }
}
