/**
 * The embedded broker dialog's users: a name, a password (the flow keeps only its hash), and the
 * topic patterns each may publish and subscribe to; and whether anonymous clients get in.
 */
import type { Translate } from './common.js';
import { PasswordHashes } from './password-hashes.js';

/** A user as the flow keeps it (the node's `accounts`); passwords are in the credentials. */
export interface BrokerAccount {
  username: string;
  publish?: string[];
  subscribe?: string[];
}

/** The credentials of the dialog's node that hold users. */
export interface UserCredentials {
  /** Password hashes by user name, as JSON. */
  passwords?: string;
  /** The single user of earlier versions. */
  user?: string;
}

/** What the dialog saves: the users, and the credentials that go with them. */
export interface SavedUsers {
  accounts: BrokerAccount[];
  /** Password hashes by user name, as JSON. */
  passwords: string;
  /** The user of earlier versions, until its password is a hash in the list; '' once it is. */
  legacyUser: string;
}

const CONTAINER = '#node-input-users-container';

/** Topic patterns as the editor shows them: separated by commas. */
function patternsText(list: unknown): string {
  return (Array.isArray(list) ? list : ['#']).join(', ');
}

function patternsList(text: unknown): string[] {
  return String(text || '')
    .split(/[,\n]/)
    .map((pattern) => pattern.trim())
    .filter(Boolean);
}

function parseHashes(json: string | undefined): Record<string, string> {
  try {
    return JSON.parse(json || '{}') || {};
  } catch {
    return {};
  }
}

/** The user list of an open dialog. */
export interface UserList {
  /** Reads the list back, for oneditsave. */
  save(): SavedUsers;
  /** The dialog closed without saving. */
  close(): void;
}

/** Builds the user list of the open dialog from the node's `accounts` and credentials. */
export function prepareUsers(
  t: Translate,
  accounts: unknown,
  allowAnonymous: unknown,
  credentials: UserCredentials,
): UserList {
  const previousHashes = parseHashes(credentials.passwords);
  // The single user of earlier versions joins the list, allowed everything, its password kept.
  const legacyUser = credentials.user || undefined;
  let users: BrokerAccount[] = Array.isArray(accounts) ? accounts.slice() : [];
  if (!Array.isArray(accounts) && legacyUser) {
    users = [{ username: legacyUser, publish: ['#'], subscribe: ['#'] }];
  }
  const anonymousInput = $('#node-input-allowAnonymous');
  const passwordHashes = new PasswordHashes(
    () => $(CONTAINER).find('.durable-mqtt-user-password'),
    $(CONTAINER).closest('.red-ui-tray').find('#node-dialog-ok'),
  );
  // A flow from before the setting lets anonymous clients in while there is no user.
  if (allowAnonymous === undefined) anonymousInput.prop('checked', users.length === 0);

  function updateAnonymous() {
    const allowed = anonymousInput.is(':checked');
    $('.durable-mqtt-anonymous-only').toggle(allowed);
    const count = $(CONTAINER).editableList('length');
    $('#durable-mqtt-embedded-nobody').toggle(!allowed && count === 0);
  }

  $(CONTAINER).editableList<Partial<BrokerAccount>>({
    addItem(row, _index, user) {
      const isNew = !user.username && user.username !== '';
      const stored = !isNew && Boolean(previousHashes[user.username ?? ''] || user.username === legacyUser);
      if (!isNew) row.data('original', String(user.username));
      const first = $('<div>', { class: 'form-row durable-mqtt-user-login' }).appendTo(row);
      $('<input>', { type: 'text', class: 'durable-mqtt-user-name' })
        .attr('placeholder', t('placeholder.username'))
        .val(user.username || '')
        .appendTo(first);
      $('<input>', { type: 'password', class: 'durable-mqtt-user-password' })
        // Set as an attribute: given to $() in the properties, jQuery would call its autocomplete widget.
        .attr('autocomplete', 'new-password')
        .attr('placeholder', t(stored ? 'placeholder.password-unchanged' : 'placeholder.password-new'))
        .on('input', () => passwordHashes.typed())
        .on('change', () => passwordHashes.changed())
        .appendTo(first);
      const second = $('<div>', { class: 'form-row durable-mqtt-user-topics' }).appendTo(row);
      $('<input>', { type: 'text', class: 'durable-mqtt-user-publish' })
        .attr('placeholder', t('label.may-publish'))
        .attr('title', t('label.may-publish'))
        .val(patternsText(user.publish))
        .appendTo(second);
      $('<input>', { type: 'text', class: 'durable-mqtt-user-subscribe' })
        .attr('placeholder', t('label.may-subscribe'))
        .attr('title', t('label.may-subscribe'))
        .val(patternsText(user.subscribe))
        .appendTo(second);
      if (isNew && $(CONTAINER).editableList('length') === 1) {
        // The first user: from now on, only users get in unless anonymous clients are ticked again.
        anonymousInput.prop('checked', false);
      }
      setTimeout(updateAnonymous, 0);
    },
    removeItem() {
      updateAnonymous();
      passwordHashes.changed();
    },
    addButton: t('label.add-user'),
    height: 'auto',
    removable: true,
    sortable: false,
  });
  for (const user of users) $(CONTAINER).editableList('addItem', user);
  anonymousInput.on('change', updateAnonymous);
  updateAnonymous();

  function save(): SavedUsers {
    passwordHashes.close();
    const hashes: Record<string, string> = {};
    const saved: BrokerAccount[] = [];
    $(CONTAINER)
      .editableList('items')
      .each(function () {
        const row = $(this);
        const username = String(row.find('.durable-mqtt-user-name').val()).trim();
        const passwordField = row.find('.durable-mqtt-user-password');
        const password = String(passwordField.val());
        saved.push({
          username,
          publish: patternsList(row.find('.durable-mqtt-user-publish').val()),
          subscribe: patternsList(row.find('.durable-mqtt-user-subscribe').val()),
        });
        const original = row.data('original') as string | undefined;
        const hash = password
          ? passwordHashes.hashOf(passwordField[0])
          : original === undefined
            ? undefined
            : previousHashes[original];
        if (password && !hash) RED.notify(t('errors.password-not-hashed', { username }), 'error');
        if (hash) hashes[username] = hash;
      });
    // The user of earlier versions stays until its password is a hash in the list (or it is gone).
    const legacyDone =
      !legacyUser || hashes[legacyUser] || !saved.some((user) => user.username === legacyUser);
    return { accounts: saved, passwords: JSON.stringify(hashes), legacyUser: legacyDone ? '' : legacyUser };
  }

  return { save, close: () => passwordHashes.close() };
}
