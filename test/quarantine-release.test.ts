import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'mocha';
import mqtt from 'mqtt';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { MONITOR_ROUTES, type MonitorSnapshot, type QuarantineView } from '../nodes/lib/monitor-protocol.js';
import { MESSAGE_ID_PROPERTY } from '../nodes/lib/end-to-end-id.js';
import { temporaryDirectory } from './support/node-red-process.js';
import { allNodes, collect, helper, watchLog } from './support/node-red.js';
import { brokerConfigNode, embeddedBrokerNode, helperNode, mqttInNode } from './support/flows.js';
import { freePort } from './support/ports.js';
import { waitFor } from './support/wait.js';

const functionNode = require('@node-red/nodes/core/function/10-function.js') as (RED: unknown) => void;

interface Answer {
  status: number;
  body: unknown;
}
/** supertest on the helper's admin API. */
const admin = () =>
  helper.request() as unknown as {
    get(path: string): Promise<Answer>;
    post(path: string): { send(body: object): Promise<Answer> };
  };

/** The in node's quarantine gauge of the metrics endpoint, read by a Prometheus text-format parser. */
async function quarantineGauge(): Promise<{ labels?: Record<string, string>; value: string }[]> {
  const { text } = (await admin().get('/durable-mqtt/metrics')) as Answer & { text: string };
  const family = parsePrometheusTextFormat(text).find(
    ({ name }) => name === 'durable_mqtt_quarantine_messages',
  );
  assert.equal(family?.type, 'GAUGE');
  return family.metrics;
}

async function quarantineOf(id: string): Promise<QuarantineView | undefined> {
  const answer = await admin().get(MONITOR_ROUTES.snapshot);
  assert.equal(answer.status, 200);
  return (answer.body as MonitorSnapshot).quarantines.find((view) => view.id === id);
}

const action = (template: string, key: string) => admin().post(template.replace(':id', 'in-q')).send({ key });

describe('quarantine: release and discard from the sidebar', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  beforeEach(() =>
    helper.settings({ userDir: temporaryDirectory('durable-mqtt-release-'), durableMqtt: { metrics: true } }),
  );
  afterEach(() => helper.unload());

  it('lists a quarantined message with its topic and error; released, it goes to the fixed flow again; discarded, it is gone', async () => {
    const port = await freePort();
    // The valve command fails until the test "fixes" the flow by setting fixed in the global context.
    const code =
      "if (msg.payload === 'open' && !global.get('fixed')) throw new Error('valve stuck');" +
      "global.set('handled', [...(global.get('handled') || []), msg.payload]); return msg;";
    await helper.load(
      [...allNodes, functionNode],
      [
        embeddedBrokerNode(port),
        brokerConfigNode({ id: 'cfg-q', clientId: 'quarantine-release', protocolVersion: 5 }),
        mqttInNode({
          id: 'in-q',
          name: 'valves',
          broker: 'cfg-q',
          topic: 'valve/#',
          ack: 'complete',
          maxDeliveries: 1,
          wires: [['fn-q'], ['quarantined']],
        }),
        { id: 'fn-q', type: 'function', func: code, outputs: 1, wires: [['done-q']] },
        helperNode('done-q'),
        helperNode('quarantined'),
      ],
    );
    const quarantined = collect(helper.getNode('quarantined'));
    const handled = collect(helper.getNode('done-q'));
    const warnings = watchLog(helper.getNode('in-q'), 'warn');
    const global = (
      helper.getNode('fn-q') as unknown as {
        context(): { global: { set(key: string, value: unknown): void } };
      }
    ).context().global;
    await waitFor(
      () =>
        (helper.getNode('cfg-q') as unknown as { connection: { connected: boolean } }).connection.connected,
      'the connection',
    );
    const publisher = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion: 5 });
    try {
      // A publisher sending a command again while it has no positive receipt: with max deliveries 1,
      // the copy after the failed first delivery is quarantined.
      for (const id of ['cmd-1', 'cmd-1', 'cmd-2', 'cmd-2'])
        await publisher.publishAsync('valve/7', 'open', {
          qos: 1,
          properties: { userProperties: { [MESSAGE_ID_PROPERTY]: id } },
        });
      await waitFor(() => quarantined.length === 2, 'both commands quarantined', 15_000);
    } finally {
      await publisher.endAsync();
    }

    const view = await quarantineOf('in-q');
    assert.equal(view?.name, 'valves');
    assert.equal(view?.count, 2);
    assert.deepEqual(
      view?.messages.map(({ key, topic, releasable, lastError }) => ({ key, topic, releasable, lastError })),
      ['cmd-2', 'cmd-1'].map((id) => ({
        key: `id:${id}`,
        topic: 'valve/7',
        releasable: true,
        lastError: 'valve stuck',
      })),
    );

    assert.deepEqual(await quarantineGauge(), [{ labels: { node: 'in-q', name: 'valves' }, value: '2' }]);

    global.set('fixed', true);
    assert.equal((await action(MONITOR_ROUTES.releaseQuarantined, 'id:cmd-1')).status, 204);
    await waitFor(() => handled.length === 1, 'the released command through the fixed flow');
    assert.equal((handled[0] as { messageId?: string }).messageId, 'cmd-1');
    assert.equal((handled[0] as { topic?: string }).topic, 'valve/7');
    assert.ok(warnings.some((line) => /released the quarantined message of topic "valve\/7"/.test(line)));

    assert.equal((await action(MONITOR_ROUTES.discardQuarantined, 'id:cmd-2')).status, 204);
    assert.ok(warnings.some((line) => /discarded the quarantined message id:cmd-2/.test(line)));
    assert.equal((await quarantineOf('in-q'))?.count, 0);
    assert.deepEqual(await quarantineGauge(), [{ labels: { node: 'in-q', name: 'valves' }, value: '0' }]);
    assert.equal(handled.length, 1, 'a discarded message never reaches the flow');
    assert.equal((await action(MONITOR_ROUTES.releaseQuarantined, 'id:cmd-2')).status, 404);
  });
});
