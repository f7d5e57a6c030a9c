/**
 * MQTT topic names and filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7–4.8).
 * Validation returns a reason code rather than text so node files can translate it.
 * The editor's dialogs run these same checks in the browser: nothing here may need Node.js.
 */

export type TopicProblem =
  | 'empty'
  | 'not-a-string'
  | 'wildcard-in-topic'
  | 'nul-character'
  | 'too-long'
  | 'hash-not-last'
  | 'wildcard-not-whole-level'
  | 'bad-shared-subscription';

const MAX_TOPIC_BYTES = 65535;
/** A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, 2 units, takes 4). */
const MAX_BYTES_PER_CODE_UNIT = 3;
const SHARED_PREFIX = '$share/';
const utf8 = new TextEncoder();

/** A topic has a two-byte length (§1.5.3): 65535 bytes of UTF-8 at most; only a long string needs encoding to tell. */
function tooLong(value: string): boolean {
  return (
    value.length * MAX_BYTES_PER_CODE_UNIT > MAX_TOPIC_BYTES && utf8.encode(value).length > MAX_TOPIC_BYTES
  );
}

function commonProblem(value: unknown): TopicProblem | undefined {
  if (typeof value !== 'string') return 'not-a-string';
  if (value.length === 0) return 'empty';
  if (value.includes('\u0000')) return 'nul-character';
  if (tooLong(value)) return 'too-long';
  return undefined;
}

/** Why `topic` cannot be published to, or undefined when it can. */
export function publishTopicProblem(topic: unknown): TopicProblem | undefined {
  const problem = commonProblem(topic);
  if (problem) return problem;
  if (/[+#]/.test(topic as string)) return 'wildcard-in-topic';
  return undefined;
}

/** Why `filter` cannot be subscribed to, or undefined when it can. Accepts `$share/group/filter`. */
export function filterProblem(filter: unknown): TopicProblem | undefined {
  const problem = commonProblem(filter);
  if (problem) return problem;
  const shared = parseSharedFilter(filter as string);
  if (shared === null) return 'bad-shared-subscription';
  const levels = shared.filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes('#')) {
      if (level !== '#') return 'wildcard-not-whole-level';
      if (i !== levels.length - 1) return 'hash-not-last';
    } else if (level.includes('+') && level !== '+') {
      return 'wildcard-not-whole-level';
    }
  }
  return undefined;
}

export interface SharedFilter {
  /** The share group, or undefined for an ordinary filter. */
  group: string | undefined;
  /** The filter that topics are matched against. */
  filter: string;
}

/**
 * Splits `$share/group/filter` into its group and filter; null when the
 * shared form is malformed (empty group, wildcard in the group, no filter).
 */
export function parseSharedFilter(filter: string): SharedFilter | null {
  if (!filter.startsWith(SHARED_PREFIX)) return { group: undefined, filter };
  const rest = filter.slice(SHARED_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const group = rest.slice(0, slash);
  const inner = rest.slice(slash + 1);
  if (/[+#]/.test(group) || inner.length === 0) return null;
  return { group, filter: inner };
}

/** Whether `topic` matches `filter`; for one-off checks (dispatch uses TopicTree). */
export function topicMatches(filter: string, topic: string): boolean {
  const shared = parseSharedFilter(filter);
  if (!shared) return false;
  const filterLevels = shared.filter.split('/');
  const topicLevels = topic.split('/');
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match $-topics.
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === '#') return true;
    if (i >= topicLevels.length) return false;
    if (level !== '+' && level !== topicLevels[i]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** Whether some topic matches both filters (`$share/group/` prefixes aside). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = (parseSharedFilter(a)?.filter ?? a).split('/');
  const y = (parseSharedFilter(b)?.filter ?? b).split('/');
  // [MQTT-4.7.2-1] a wildcard first level matches no topic starting with '$'.
  const dollar = (levels: string[]) => levels[0].startsWith('$');
  const wild = (level: string) => level === '+' || level === '#';
  if ((dollar(x) && wild(y[0])) || (dollar(y) && wild(x[0]))) return false;
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}
