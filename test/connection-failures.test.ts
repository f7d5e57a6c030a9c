import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import { allNodes, collect, completionObservers, helper, watchLog, watchStatus } from './support/node-red.js';
import {
  brokerConfigNode,
  embeddedBrokerNode,
  helperNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/wait.js';

// What a user sees of a broker config that cannot connect: one line per cause in the debug sidebar,
// against a node they can click through to, and drops that say since when.
const CONFIG = 'c0000000000000016';

const clock = (at: Date) =>
  `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
const isDisconnection = (line: string) => line.startsWith('Disconnected from broker');

describe('a broker config that cannot connect', () => {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('logs its failure once per cause, against the first node that uses it, and not again at a redeploy', async () => {
    // Nothing listens there: every retry fails for the same cause.
    const port = await freePort();
    const flow = [
      brokerConfigNode({ id: CONFIG, clientId: 'failure-log', port, name: 'plant broker' }),
      mqttOutNode({ id: 'out1', broker: CONFIG, topic: 't' }),
      mqttInNode({ id: 'in1', broker: CONFIG, topic: 't', wires: [['sink']] }),
      helperNode('sink'),
    ];
    await helper.load(allNodes, flow);
    const outErrors = watchLog(helper.getNode('out1'), 'error');
    const inErrors = watchLog(helper.getNode('in1'), 'error');
    const configErrors = watchLog(helper.getNode(CONFIG), 'error');
    await waitFor(() => outErrors.some(isDisconnection), 'the failure logged against the out node');
    const [logged] = outErrors.filter(isDisconnection);
    assert.match(
      logged,
      new RegExp(`^Disconnected from broker "plant broker" \\(mqtt://127\\.0\\.0\\.1:${port}\\): `),
    );
    // The first retry comes after about a second; it fails for the same cause.
    await delay(2_500);
    assert.equal(outErrors.filter(isDisconnection).length, 1, 'said once, not at every retry');
    assert.deepEqual(inErrors.filter(isDisconnection), [], 'said once, not by every node');
    assert.deepEqual(configErrors.filter(isDisconnection), [], 'not against the config node');

    // A full deploy makes every node anew: the same cause is not news.
    await helper.setFlows(flow, 'full');
    const afterDeploy = watchLog(helper.getNode('out1'), 'error');
    await delay(2_000);
    assert.deepEqual(afterDeploy.filter(isDisconnection), [], 'not said again at a redeploy');
  });

  it('shows the drop count of an out node with the time of the first drop, after the connection is back too', async () => {
    const port = await freePort();
    const flow = [
      brokerConfigNode({ id: CONFIG, clientId: 'drops-since', port }),
      mqttOutNode({ id: 'out1', broker: CONFIG, topic: 't' }),
      ...completionObservers('out1'),
    ];
    await helper.load(allNodes, flow);
    const statuses = watchStatus(helper.getNode('out1'));
    const caught = collect(helper.getNode('caught'));
    const minutes = [clock(new Date())];
    helper.getNode('out1').receive({ payload: 1 });
    helper.getNode('out1').receive({ payload: 2 });
    await waitFor(() => caught.length === 2, 'both refused with an error a Catch node sees');
    minutes.push(clock(new Date()));
    const dropsShown = (text: string | undefined) =>
      minutes.some((hhmm) => text?.endsWith(`2 dropped since ${hhmm}`));
    await waitFor(() => statuses.some((s) => dropsShown(s.text)), '"2 dropped since HH:MM" in the status');

    // The broker comes (the out node, unchanged, keeps running): the count stays, with its time.
    await helper.setFlows([...flow, embeddedBrokerNode(port)], 'nodes');
    await waitFor(
      () => statuses.at(-1)?.text?.startsWith('connected') === true && dropsShown(statuses.at(-1)?.text),
      'connected, and still "2 dropped since HH:MM"',
    );
  });
});
