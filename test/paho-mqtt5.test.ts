/**
 * A third-party MQTT 5 client against the embedded broker: Eclipse Paho for Python, as Debian ships
 * it (python3-paho-mqtt, the client library of Home Assistant's MQTT integration), each client a
 * Python process of its own, talking TCP to a Node-RED process running example 07 with this package.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'mocha';
import { NodeRedRig } from './support/crash-rig.js';
import { showingOutputOnFailure } from './support/failure-output.js';
import { isConnected } from './support/hello-world.js';
import { CommsObserver } from './support/node-red-process.js';
import { PahoClient, pahoPython, type PahoEvent } from './support/paho.js';
import { freePort } from './support/ports.js';
import { skipUnlessInstalled } from './support/services.js';
import { delay, waitFor } from './support/wait.js';

const root = path.resolve(__dirname, '..');
const example: Record<string, unknown>[] = JSON.parse(
  readFileSync(path.join(root, 'examples', '07-home-assistant.json'), 'utf8'),
);
const idOf = (type: string, topic?: string) =>
  String(example.find((n) => n.type === type && (topic === undefined || n.topic === topic))!.id);
const BROKER = idOf('durable-mqtt-embedded-broker');
const STATE_DEBUG = idOf('debug');
const COMMAND_IN = idOf('durable-mqtt-in');
const DISCOVERY_OUT = idOf('durable-mqtt-out', 'homeassistant/switch/node_red_pump/config');
const AVAILABILITY = 'node-red/pump/availability';

describe('Eclipse Paho (Python, MQTT 5) against the embedded broker of a Node-RED process running example 07', () => {
  let rig: NodeRedRig;
  let port: number;
  let comms: CommsObserver | undefined;
  const clients: PahoClient[] = [];
  const showingOutput = showingOutputOnFailure(
    () => `--- Node-RED output ---\n${rig?.process?.output}\n--- end of Node-RED output ---`,
  );

  function paho(): PahoClient {
    const client = new PahoClient(port);
    clients.push(client);
    return client;
  }

  before(function () {
    this.timeout(90_000);
    skipUnlessInstalled(this, 'python3-paho-mqtt', pahoPython);
    return showingOutput(async () => {
      port = await freePort();
      // Example 07 as imported, on a tab, its broker on a free port rather than its 1884.
      const tab = { id: 'a0a1c0ffee000700', type: 'tab', label: 'home assistant' };
      rig = new NodeRedRig([
        tab,
        ...example.map((node) => ({
          ...node,
          ...('x' in node ? { z: tab.id } : {}),
          ...(node.id === BROKER ? { port: String(port) } : {}),
        })),
      ]);
      await rig.start();
      comms = await CommsObserver.open(rig.url, ['debug', 'status/#']);
      await comms.waitForStatus(COMMAND_IN, isConnected, 'the command in node to connect', 30_000);
      await comms.waitForStatus(DISCOVERY_OUT, isConnected, 'the discovery out node to connect', 30_000);
    });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });

  after(async () => {
    comms?.close();
    await rig?.stop();
  });

  it('connects with MQTT 5 and a session expiry: CONNACK Success, no session present, shared subscriptions said available', () =>
    showingOutput(async () => {
      const client = paho();
      const connack = await client.connect({
        clientId: 'paho-connect',
        cleanStart: true,
        sessionExpiry: 300,
      });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.reason, 'Success');
      assert.equal(connack.sessionPresent, false);
      assert.equal((connack.properties as Record<string, unknown>).SharedSubscriptionAvailable, 1);
    }));

  it('subscribes with options: No Local, Retain As Published and Retain Handling as paho sets them', () =>
    showingOutput(async () => {
      const publisher = paho();
      await publisher.connect({ clientId: 'paho-options-publisher' });
      for (const topic of ['paho/options/a', 'paho/options/b'])
        await publisher.publish(topic, 'kept', { qos: 1, retain: true });

      const subscriber = paho();
      await subscriber.connect({ clientId: 'paho-options-subscriber' });
      // No Local: its own publication does not come back; another client's does.
      assert.deepEqual(await subscriber.subscribe({ topic: 'paho/options/chat', qos: 1, noLocal: true }), [
        { value: 1, reason: 'Granted QoS 1' },
      ]);
      await subscriber.publish('paho/options/chat', 'from myself', { qos: 1 });
      await publisher.publish('paho/options/chat', 'from the other', { qos: 1 });
      await subscriber.message('paho/options/chat');
      assert.deepEqual(
        subscriber.messages('paho/options/chat').map((m) => m.payload),
        ['from the other'],
      );
      // Retain Handling 2: no retained message on subscribing; Retain As Published: a retained publication
      // is forwarded with RETAIN set. Retain Handling 0 and no Retain As Published: the retained message
      // on subscribing, RETAIN cleared on the live one.
      await subscriber.subscribe({
        topic: 'paho/options/a',
        qos: 1,
        retainHandling: 2,
        retainAsPublished: true,
      });
      await subscriber.subscribe({
        topic: 'paho/options/b',
        qos: 1,
        retainHandling: 0,
        retainAsPublished: false,
      });
      await subscriber.message('paho/options/b');
      for (const topic of ['paho/options/a', 'paho/options/b'])
        await publisher.publish(topic, 'live', { qos: 1, retain: true });
      await subscriber.message('paho/options/a', (m) => m.payload === 'live');
      await subscriber.message('paho/options/b', (m) => m.payload === 'live');
      await delay(300);
      const received = (topic: string) =>
        subscriber.messages(topic).map(({ payload, retain }) => ({ payload, retain }));
      assert.deepEqual(received('paho/options/a'), [{ payload: 'live', retain: true }]);
      assert.deepEqual(received('paho/options/b'), [
        { payload: 'kept', retain: true },
        { payload: 'live', retain: false },
      ]);
      for (const topic of ['paho/options/a', 'paho/options/b'])
        await publisher.publish(topic, '', { qos: 1, retain: true });
    }));

  it('keeps retained discovery messages: a later subscriber to homeassistant/# gets each config with RETAIN, and an empty one removes it', () =>
    showingOutput(async () => {
      const device = paho();
      await device.connect({ clientId: 'paho-sensor' });
      const config = JSON.stringify({
        name: 'Temperature',
        unique_id: 'paho_temperature',
        state_topic: 'paho/sensor/temperature',
        device_class: 'temperature',
      });
      await device.publish('homeassistant/sensor/paho_temperature/config', config, { qos: 1, retain: true });
      await device.publish('paho/sensor/temperature', '21.5', { qos: 1, retain: true });

      const homeAssistant = paho();
      await homeAssistant.connect({ clientId: 'paho-home-assistant-1' });
      await homeAssistant.subscribe({ topic: 'homeassistant/#', qos: 1 });
      const discovered = await homeAssistant.message('homeassistant/sensor/paho_temperature/config');
      assert.equal(discovered.payload, config);
      assert.equal(discovered.retain, true);
      assert.equal(discovered.qos, 1);
      await homeAssistant.subscribe({ topic: 'paho/sensor/temperature', qos: 1 });
      assert.equal((await homeAssistant.message('paho/sensor/temperature')).payload, '21.5');

      // The device is removed from Home Assistant by an empty retained config.
      await device.publish('homeassistant/sensor/paho_temperature/config', '', { qos: 1, retain: true });
      await device.publish('paho/sensor/temperature', '', { qos: 1, retain: true });
      const later = paho();
      await later.connect({ clientId: 'paho-home-assistant-2' });
      await later.subscribe({ topic: 'homeassistant/sensor/#', qos: 1 });
      await delay(500);
      assert.deepEqual(later.messages(), []);
    }));

  it("sees example 07 as Home Assistant does: the retained discovery config, availability online, and a command's state", () =>
    showingOutput(async () => {
      const homeAssistant = paho();
      await homeAssistant.connect({ clientId: 'paho-home-assistant' });
      await homeAssistant.subscribe({ topic: 'homeassistant/#', qos: 1 });
      const discovery = await homeAssistant.message('homeassistant/switch/node_red_pump/config');
      assert.equal(discovery.retain, true);
      const config = JSON.parse(discovery.payload);
      assert.equal(config.unique_id, 'node_red_pump');
      assert.equal(config.availability_topic, AVAILABILITY);

      await homeAssistant.subscribe({ topic: config.availability_topic, qos: 1 });
      const availability = await homeAssistant.message(AVAILABILITY);
      assert.deepEqual(
        { payload: availability.payload, retain: availability.retain },
        { payload: 'online', retain: true },
      );

      await homeAssistant.subscribe({ topic: config.state_topic, qos: 1 });
      await homeAssistant.publish(config.command_topic, config.payload_on, { qos: 1 });
      const state = await homeAssistant.message(config.state_topic, (m) => m.payload === config.payload_on);
      assert.equal(state.qos, 1);
      await waitFor(
        () => comms!.debugMessages().some((m) => m.id === STATE_DEBUG && m.msg === 'ON'),
        'the state in the debug sidebar',
        10_000,
      );
      // A later Home Assistant (a restart) finds the state retained.
      const restarted = paho();
      await restarted.connect({ clientId: 'paho-home-assistant-restarted' });
      await restarted.subscribe({ topic: config.state_topic, qos: 1 });
      const kept = await restarted.message(config.state_topic);
      assert.deepEqual({ payload: kept.payload, retain: kept.retain }, { payload: 'ON', retain: true });
      // As imported, the example logs nothing at warn or error level.
      const ours = new Set(
        example.filter((n) => String(n.type).startsWith('durable-mqtt-')).map((n) => n.id),
      );
      assert.deepEqual(
        comms!.debugMessages().filter((m) => m.level !== undefined && ours.has(m.id)),
        [],
      );
      assert.deepEqual(rig.process!.logLines('error'), []);
    }));

  it('publishes the will of a client killed without a DISCONNECT (SIGKILL) to another client, retained', () =>
    showingOutput(async () => {
      const watcher = paho();
      await watcher.connect({ clientId: 'paho-will-watcher' });
      await watcher.subscribe({ topic: 'paho/device/availability', qos: 1 });

      const device = paho();
      await device.connect({
        clientId: 'paho-will-device',
        will: { topic: 'paho/device/availability', payload: 'offline', qos: 1, retain: true },
      });
      await device.publish('paho/device/availability', 'online', { qos: 1, retain: true });
      await watcher.message('paho/device/availability', (m) => m.payload === 'online');
      await device.kill();
      const will = await watcher.message('paho/device/availability', (m) => m.payload === 'offline');
      assert.equal(will.qos, 1);
      // Retained: a client subscribing later sees the device offline.
      const later = paho();
      await later.connect({ clientId: 'paho-will-later' });
      await later.subscribe({ topic: 'paho/device/availability', qos: 1 });
      const kept = await later.message('paho/device/availability');
      assert.deepEqual({ payload: kept.payload, retain: kept.retain }, { payload: 'offline', retain: true });

      // A client that says goodbye leaves no will.
      const polite = paho();
      await polite.connect({
        clientId: 'paho-will-polite',
        will: { topic: 'paho/device/polite', payload: 'gone', qos: 1, retain: false },
      });
      await watcher.subscribe({ topic: 'paho/device/polite', qos: 1 });
      await polite.disconnect();
      await delay(500);
      assert.deepEqual(watcher.messages('paho/device/polite'), []);
    }));

  it('resumes a session on reconnect (clean start off, session expiry 300 s): session present, and the QoS 1 messages sent while away arrive', () =>
    showingOutput(async () => {
      const session = { clientId: 'paho-resume', cleanStart: false, sessionExpiry: 300 };
      const first = paho();
      // A session left by an earlier run of this file is not possible: the broker keeps sessions in memory.
      assert.equal((await first.connect(session)).sessionPresent, false);
      await first.subscribe({ topic: 'paho/resume/#', qos: 1 });
      await first.disconnect();

      const publisher = paho();
      await publisher.connect({ clientId: 'paho-resume-publisher' });
      for (const n of [1, 2, 3]) await publisher.publish(`paho/resume/${n}`, String(n), { qos: 1 });

      const second = paho();
      const connack: PahoEvent = await second.connect(session);
      assert.equal(connack.sessionPresent, true);
      await waitFor(() => second.messages().length === 3, 'the three queued messages', 10_000);
      assert.deepEqual(
        second.messages().map(({ topic, payload, qos }) => ({ topic, payload, qos })),
        [1, 2, 3].map((n) => ({ topic: `paho/resume/${n}`, payload: String(n), qos: 1 })),
      );
      // The subscription came back with the session: a new message arrives without subscribing again.
      await publisher.publish('paho/resume/4', '4', { qos: 1 });
      assert.equal((await second.message('paho/resume/4')).payload, '4');
    }));

  it('$share between two clients: each paho worker receives some of the jobs, and together exactly all of them', () =>
    showingOutput(async () => {
      const JOBS = 20;
      const workers = [paho(), paho()];
      for (const [index, worker] of workers.entries()) {
        await worker.connect({ clientId: `paho-worker-${index + 1}` });
        const [grant] = await worker.subscribe({ topic: '$share/workers/paho/jobs', qos: 1 });
        assert.equal(grant.value, 1);
      }
      const producer = paho();
      await producer.connect({ clientId: 'paho-producer' });
      for (let n = 1; n <= JOBS; n++) await producer.publish('paho/jobs', `job ${n}`, { qos: 1 });
      const all = () => workers.flatMap((worker) => worker.messages('paho/jobs'));
      await waitFor(() => all().length >= JOBS, `the ${JOBS} jobs`, 10_000);
      await delay(300); // a copy too many would come now
      const jobs = all().map((message) => Number(message.payload.replace('job ', '')));
      assert.deepEqual(
        jobs.sort((a, b) => a - b),
        Array.from({ length: JOBS }, (_, i) => i + 1),
        'every job once',
      );
      assert.ok(
        workers.every((worker) => worker.messages('paho/jobs').length > 0),
        'both workers take part',
      );
    }));
});
