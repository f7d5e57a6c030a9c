/**
 * The access control (../access-control.ts) applied through Aedes' hooks: credentials at CONNECT,
 * each filter of a SUBSCRIBE, wills (publications are checked by the packet gate before Aedes), and
 * deliveries when a subscribe list denies.
 */
import type { AedesOptions, AuthenticateError, Client } from 'aedes' with { 'resolution-mode': 'import' };
import type { AccessControl } from '../access-control.js';
import type { Identity } from '../acl.js';
import { GatedConnection } from '../gated-connection.js';
import { publicFilter } from './shared-subscriptions.js';

/**
 * What the access control says of a client's credentials: nothing when they are accepted, else the
 * refusal with its CONNACK return code (3 when they could not be checked), as Aedes' hook wants it.
 */
export async function refusalOf(
  access: AccessControl,
  username: string | undefined,
  password: Buffer | undefined,
): Promise<AuthenticateError | undefined> {
  try {
    const result = await access.authenticate(username, password);
    if (result.accepted) return undefined;
    const error = new Error(result.returnCode === 4 ? 'bad user name or password' : 'not authorised');
    return Object.assign(error, { returnCode: result.returnCode }) as AuthenticateError;
  } catch (error) {
    return Object.assign(error as Error, { returnCode: 3 }) as AuthenticateError;
  }
}

/** A client with an empty id counts as no id for access rules (`%c`), whatever id Aedes makes up for it. */
const UNKNOWN: Identity = { username: undefined, clientId: '' };

function identityOf(client: Client | null): Identity {
  return client?.conn instanceof GatedConnection ? (client.conn.identity ?? UNKNOWN) : UNKNOWN;
}

/** The Aedes hooks that apply `access`; `subscribeRefused` hears of each filter refused. */
export function accessHooks(
  access: AccessControl,
  subscribeRefused: (identity: Identity, filter: string) => void,
): Partial<AedesOptions> {
  const hooks: Partial<AedesOptions> = {
    authenticate: (_client, username, password, callback) => {
      void refusalOf(access, username, password).then((refusal) =>
        refusal ? callback(refusal, false) : callback(null, true),
      );
    },
    authorizeSubscribe: (client, subscription, callback) => {
      const identity = identityOf(client);
      // A shared subscription comes under the name Aedes knows it by; the rules judge its filter.
      const filter = publicFilter(subscription.topic);
      if (access.maySubscribe(identity, filter)) return callback(null, subscription);
      subscribeRefused(identity, filter);
      // No subscription: Aedes answers 0x80 in the SUBACK for this filter and keeps the connection.
      callback(null, null);
    },
    // Publications pass the gate first; what reaches this hook unchecked is a will.
    authorizePublish: (client, packet, callback) => {
      // Aedes' own rule, kept: $SYS/ is the broker's.
      if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topics are reserved'));
      if (client && !access.mayPublish(identityOf(client), packet.topic))
        return callback(new Error('not authorised to publish'));
      callback(null);
    },
  };
  // A subscription a denial only overlaps was allowed: the topics the denial covers are withheld here.
  // Asked for every message a client gets, so only when some list denies.
  if (access.checksDeliveries)
    hooks.authorizeForward = (client, packet) =>
      access.mayReceive(identityOf(client), packet.topic) ? packet : undefined;
  return hooks;
}
