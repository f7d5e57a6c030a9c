/** The broker config dialog's "Test connection" button: one connection from the runtime, and its outcome. */
import type { Translate } from './common.js';

/** Fields of the dialog a connection test sends: where and how to connect, and the credentials. */
const TEST_FIELDS = [
  'transport',
  'embedded',
  'host',
  'port',
  'path',
  'protocolVersion',
  'keepalive',
  'user',
  'password',
];

/** What the runtime answers (nodes/broker-config.ts, POST durable-mqtt-broker-config/test-connection). */
interface TestAnswer {
  outcome?: string;
  reason?: { code?: string; message?: string; returnCode?: number };
  /** A catalog key for a refusal's reason code. */
  reasonKey?: string;
}

interface TestOutcome {
  ok: boolean;
  text: string;
}

/** What the runtime answered to a connection test, in the editor's language. */
function describeTest(t: Translate, answer: TestAnswer): TestOutcome {
  switch (answer.outcome) {
    case 'connected':
      return { ok: true, text: t('test.connected') };
    case 'timeout':
    case 'tls-not-deployed':
      return { ok: false, text: t(`test.${answer.outcome}`) };
    case 'failed': {
      const reason = answer.reason || {};
      let text = reason.message;
      if (reason.code === 'refused') {
        const why = answer.reasonKey ? t(answer.reasonKey) : reason.message;
        text = t('errors.connection-refused', { reason: why, code: reason.returnCode });
      } else if (reason.code === 'embedded-missing') {
        text = t('errors.embedded-missing');
      } else if (reason.code === 'lost') {
        text = t('errors.connection-lost');
      }
      return { ok: false, text: t('test.failed', { reason: text }) };
    }
    default:
      return { ok: false, text: t('test.request-failed', { reason: JSON.stringify(answer) }) };
  }
}

/**
 * Connects once from the runtime with the dialog's current values (`prefix`: of its field ids),
 * saved or not, and shows how it went.
 */
export function testConnection(t: Translate, nodeId: string, prefix: string): void {
  const body: Record<string, string> = { id: nodeId };
  for (const field of TEST_FIELDS) body[field] = String($(`#${prefix}-${field}`).val() || '');
  const tls = $(`#${prefix}-tls`).val();
  body.tls = tls && tls !== '_ADD_' ? String(tls) : '';
  const button = $('#durable-mqtt-broker-test').prop('disabled', true);
  $('#durable-mqtt-broker-test-row').show();
  const result = $('#durable-mqtt-broker-test-result')
    .attr('class', '')
    .empty()
    .append($('<i class="fa fa-spinner fa-spin"></i>'), ' ', $('<span>').text(t('test.running')));
  function show(outcome: TestOutcome) {
    button.prop('disabled', false);
    result
      .attr('class', outcome.ok ? 'durable-mqtt-test-ok' : 'durable-mqtt-test-failed')
      .empty()
      .append(
        $('<i class="fa">').addClass(outcome.ok ? 'fa-check' : 'fa-exclamation-triangle'),
        ' ',
        $('<span>').text(outcome.text),
      );
  }
  // jQuery rather than fetch: the editor's ajax settings carry the admin API's access token.
  $.ajax({
    url: 'durable-mqtt-broker-config/test-connection',
    type: 'POST',
    contentType: 'application/json',
    data: JSON.stringify(body),
    dataType: 'json',
  })
    .done((answer: TestAnswer) => show(describeTest(t, answer)))
    .fail((xhr) => {
      const answer = xhr.responseJSON as { error?: string } | undefined;
      const error = answer?.error || xhr.statusText || String(xhr.status);
      show({ ok: false, text: t('test.request-failed', { reason: error }) });
    });
}
