/**
 * The sidebar's requests to the runtime's monitor routes (lib/monitor-protocol.ts), and what a
 * failed one tells the user.
 */
import { MONITOR_ROUTES } from '../../lib/monitor-protocol.js';
import { t } from '../common.js';
import type { NotifyButton } from '../editor-api.js';

export type RouteName = keyof typeof MONITOR_ROUTES;

interface RequestOptions {
  /** The node (or broker) the route's `:id` names. */
  id?: string;
  query?: Record<string, string>;
  body?: object;
  /** Tells the user nothing of a failure (one they have been told of already). */
  quiet?: boolean;
}

/**
 * What a refusal or a failure of the runtime means to the user, by HTTP status: a key of
 * `sidebar.request-failed`.
 */
function failureKind(status: number): string {
  if (status === 0) return 'unreachable';
  if ([400, 401, 403, 404, 429].includes(status)) return String(status);
  return 'failed';
}

/** The text of a failed request: what failed (`action`, translated) and why. */
export function failureText(action: string, xhr: JQuery.jqXHR): string {
  const retryAfter = Number(xhr.getResponseHeader('Retry-After')) || 1;
  const reason = t(`sidebar.request-failed.${failureKind(xhr.status)}`, {
    status: xhr.status,
    seconds: retryAfter,
  });
  return t('sidebar.request-failed.text', { action, reason });
}

/** Shows `text` as the editor's error notification; as an element, so that names stay text. */
export function notifyError(text: string): void {
  RED.notify($('<p>').text(text), { type: 'error' });
}

/** What monitorRequest resolves with when the request failed (and the user has been told). */
export const failed = Symbol('failed');

/**
 * Sends `method` to `route` and resolves with the answer's body (undefined for 204); on a failure
 * notifies the user, saying `action` failed, and resolves with `failed`.
 * jQuery rather than fetch: the editor's ajax settings carry the admin API's access token.
 */
export function monitorRequest<Answer>(
  method: 'GET' | 'POST' | 'DELETE',
  route: RouteName,
  action: string,
  options: RequestOptions = {},
): Promise<Answer | undefined | typeof failed> {
  // Relative to the editor's page, which Node-RED serves at httpAdminRoot, as the editor's own requests.
  let url = MONITOR_ROUTES[route].replace(/^\//, '');
  if (options.id !== undefined) url = url.replace(':id', encodeURIComponent(options.id));
  if (options.query) url += `?${$.param(options.query)}`;
  return new Promise((resolve) => {
    $.ajax({
      url,
      type: method,
      cache: false,
      ...(options.body ? { contentType: 'application/json', data: JSON.stringify(options.body) } : {}),
      dataType: 'json',
    })
      .done((answer: Answer | undefined) => resolve(answer))
      .fail((xhr: JQuery.jqXHR) => {
        // A 204 has no body, which jQuery's JSON parser calls a failure.
        if (xhr.status >= 200 && xhr.status < 300) return resolve(undefined);
        if (!options.quiet) notifyError(failureText(action, xhr));
        resolve(failed);
      });
  });
}

/**
 * Asks the user to confirm `question` (the editor's modal notification, as its own confirmations),
 * then runs `confirmed`.
 */
export function confirmAction(question: string, confirmLabel: string, confirmed: () => void): void {
  const buttons: NotifyButton[] = [
    { text: t('sidebar.action.cancel'), click: () => notification.close() },
    {
      text: $('<span>').text(confirmLabel).html(),
      class: 'primary',
      click: () => {
        notification.close();
        confirmed();
      },
    },
  ];
  const notification = RED.notify($('<p>').text(question), {
    type: 'warning',
    modal: true,
    fixed: true,
    buttons,
  });
}

/** Whether the user may act (retry, purge, delete…): the routes of actions ask `durable-mqtt.write`. */
export function mayAct(): boolean {
  return RED.user.hasPermission('durable-mqtt.write');
}
