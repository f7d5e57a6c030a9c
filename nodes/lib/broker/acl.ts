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

/** One entry of an access list: a pattern that allows, or (written `!pattern`) denies. */
interface Rule {
  deny: boolean;
  /** An MQTT filter, with `%u` and `%c` when it is a template. */
  pattern: string;
}

/**
 * The topic patterns of one account for one direction (publish or subscribe): an ordered list
 * where the first pattern that matches decides, as Mosquitto's dynamic security does. A pattern
 * written `!secret/+` denies, so `+/+` can be allowed after it without `secret/…`.
 */
export class TopicAccess {
  private readonly rules: Rule[];
  private readonly templated: boolean;
  private readonly everything: boolean;
  /** Whether a pattern denies: a subscription may then be allowed while some of what it matches is not. */
  readonly denies: boolean;

  constructor(patterns: readonly string[]) {
    this.rules = patterns
      .map((text) => text.trim())
      .map((text) =>
        text.startsWith('!') ? { deny: true, pattern: text.slice(1).trim() } : { deny: false, pattern: text },
      )
      .filter(({ pattern }) => pattern !== '');
    this.templated = this.rules.some(({ pattern }) => pattern.includes('%'));
    this.denies = this.rules.some(({ deny }) => deny);
    // `#` allowed before any denial: every topic's first match allows it.
    const firstDenial = this.rules.findIndex(({ deny }) => deny);
    const everything = this.rules.findIndex(({ deny, pattern }) => !deny && pattern === '#');
    this.everything = everything >= 0 && (firstDenial < 0 || everything < firstDenial);
  }

  /** Whether `topic` may be published to (or, for a subscribe list, delivered to the client). */
  allowsTopic(topic: string, identity: Identity): boolean {
    if (this.everything) return true;
    for (const { deny, pattern } of this.rulesFor(identity)) if (topicMatches(pattern, topic)) return !deny;
    return false;
  }

  /**
   * Whether `filter` may be subscribed to; a shared subscription is judged by its inner filter.
   * A filter wholly within a denied pattern is refused; one a denied pattern only overlaps goes on
   * to the next pattern, and the topics the denial covers are withheld at delivery (allowsTopic).
   */
  allowsFilter(filter: string, identity: Identity): boolean {
    if (this.everything) return true;
    const inner = parseSharedFilter(filter)?.filter;
    if (inner === undefined) return false;
    for (const { deny, pattern } of this.rulesFor(identity)) {
      if (filterWithin(inner, pattern)) return !deny;
    }
    return false;
  }

  /** Whether the patterns allow everything, $-topics included: `#` alone, before any denial. */
  get unrestricted(): boolean {
    return this.everything;
  }

  private rulesFor(identity: Identity): Rule[] {
    if (!this.templated) return this.rules;
    const rules: Rule[] = [];
    for (const { deny, pattern } of this.rules) {
      if (!pattern.includes('%')) rules.push({ deny, pattern });
      else {
        const filled = substitute(pattern, identity);
        if (filled !== undefined) rules.push({ deny, pattern: filled });
        // A denial that cannot apply to this identity denies nothing; an allowance, nothing either.
      }
    }
    return rules;
  }
}
