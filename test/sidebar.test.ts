import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'mocha';
import mqtt, { type MqttClient } from 'mqtt';
import { chromium, type Browser, type Locator } from 'playwright-core';
import { MONITOR_ROUTES, WATCH_RENEW_MS, type RetainedListing } from '../nodes/lib/monitor-protocol.js';
import { MESSAGE_ID_PROPERTY } from '../nodes/lib/end-to-end-id.js';
import { Editor, showingNodeRedAndEditor } from './support/editor.js';
import {
  brokerConfigNode,
  dedupeNode,
  embeddedBrokerNode,
  mqttInNode,
  mqttOutNode,
} from './support/flows.js';
import { englishCatalog } from './support/hello-world.js';
import { repositoryNodeRed, startNodeRed } from './support/node-red-install.js';
import { NodeRedProcess, temporaryDirectory } from './support/node-red-process.js';
import { freePort } from './support/ports.js';
import { findBinary, skipUnlessInstalled } from './support/services.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { linkedUserDirectory } from './support/user-directory.js';
import { waitFor } from './support/wait.js';

declare const RED: {
  actions: { invoke(name: string): void };
  workspaces: { active(): string; show(id: string): void };
};

const root = path.resolve(__dirname, '..');
const DOCS = path.join(root, 'docs');
const chromiumBinary = findBinary(['/usr/bin/chromium']);
const texts = englishCatalog.sidebar;

/** The nodes of the flows: one tab with the broker, its in node and a dedupe node; one with the outbox. */
const ids = {
  brokerTab: 'sidebar-tab-broker',
  outboxTab: 'sidebar-tab-outbox',
  broker: 'sidebar-broker',
  local: 'sidebar-local',
  remote: 'sidebar-remote',
  inNode: 'sidebar-in',
  commands: 'sidebar-commands',
  out: 'sidebar-out',
  repeat: 'sidebar-repeat',
  dedupe: 'sidebar-dedupe',
  valves: 'sidebar-valves',
  valveStep: 'sidebar-valve-step',
  valveDone: 'sidebar-valve-done',
  fix: 'sidebar-fix',
  fixStep: 'sidebar-fix-step',
  local5: 'sidebar-local-v5',
};

describe('the "durable mqtt" sidebar in Chromium: brokers, clients, retained messages, outboxes, dedupe', () => {
  let userDir: string;
  let nodeRed: NodeRedProcess | undefined;
  let browser: Browser | undefined;
  let editor: Editor;
  let sidebar: Locator;
  /** In front of the embedded broker's port: the out node's broker, reachable only while open. */
  let proxy: TcpProxy;
  let brokerPort: number;
  const clients: MqttClient[] = [];
  /** The sensor's readings, every 200 ms: traffic for the rates chart. */
  let readings: NodeJS.Timeout | undefined;
  /** What the client `dashboard` received on plant/#. */
  const received: { topic: string; payload: string }[] = [];
  const showingOutput = showingNodeRedAndEditor(
    () => nodeRed,
    () => editor,
  );

  /** Triggers an inject node, as its button on the canvas does. */
  async function inject(id: string): Promise<void> {
    const answer = await fetch(`${nodeRed!.baseUrl}/inject/${id}`, { method: 'POST' });
    assert.equal(answer.status, 200, `inject ${id}`);
  }

  /** The messages the out node's outbox holds, as the sidebar shows them. */
  async function outboxDepth(): Promise<number> {
    const held = await sidebar
      .locator(`[data-outbox-id="${ids.out}"] [data-messages]`)
      .getAttribute('data-messages');
    return Number(held);
  }

  async function waitForOutboxDepth(depth: number, timeoutMs = 20_000): Promise<void> {
    await sidebar
      .locator(`[data-outbox-id="${ids.out}"] [data-messages="${depth}"]`)
      .waitFor({ timeout: timeoutMs });
  }

  /** Drags the sidebar's edge `pixels` to the left, as a user makes room for a wide tab. */
  async function widenSidebar(pixels: number): Promise<void> {
    const edge = (await editor.page.locator('#red-ui-sidebar-separator').boundingBox())!;
    const mouse = editor.page.mouse;
    await mouse.move(edge.x + edge.width / 2, edge.y + 200);
    await mouse.down();
    await mouse.move(edge.x + edge.width / 2 - pixels, edge.y + 200, { steps: 10 });
    await mouse.up();
  }

  /** Folds or unfolds a section of the tab by a click on its header. */
  async function toggleSection(kind: string): Promise<void> {
    await sidebar.locator(`.durable-mqtt-sidebar-${kind} > .durable-mqtt-sidebar-header`).click();
  }

  /** Clicks the primary button of the confirmation the editor shows, after checking its question. */
  async function confirm(question: RegExp): Promise<void> {
    const notification = editor.page.locator('.red-ui-notification', { hasText: question });
    await notification.locator('button.primary').click();
  }

  before(function () {
    skipUnlessInstalled(this, 'chromium', chromiumBinary);
  });

  before(async function () {
    this.timeout(120_000);
    brokerPort = await freePort();
    proxy = new TcpProxy(await freePort(), brokerPort);
    userDir = linkedUserDirectory(temporaryDirectory('durable-mqtt-sidebar-'));
    nodeRed = await startNodeRed(repositoryNodeRed(), userDir);
    const flows = [
      { id: ids.brokerTab, type: 'tab', label: 'broker' },
      { id: ids.outboxTab, type: 'tab', label: 'outbox' },
      embeddedBrokerNode(brokerPort, {
        id: ids.broker,
        z: ids.brokerTab,
        name: 'plant broker',
        x: 160,
        y: 60,
      }),
      brokerConfigNode({
        id: ids.local,
        clientId: 'node-red-in-process',
        embedded: ids.broker,
        name: 'in-process',
      }),
      mqttInNode({ id: ids.inNode, broker: ids.local, topic: 'plant/#', z: ids.brokerTab, x: 160, y: 140 }),
      {
        ...{ id: ids.repeat, type: 'inject', z: ids.brokerTab, x: 160, y: 220, name: 'same message' },
        ...{
          props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
          topic: 'alarms',
          payload: 'pump 3 stopped',
        },
        ...{ payloadType: 'str', repeat: '', once: false, wires: [[ids.dedupe]] },
      },
      dedupeNode({ id: ids.dedupe, z: ids.brokerTab, x: 400, y: 220, name: 'alarms once' }),
      // The out node's broker config reaches the embedded broker through the proxy, over TCP.
      brokerConfigNode({
        id: ids.remote,
        clientId: 'node-red-over-tcp',
        port: proxy.port,
        name: 'plant over tcp',
      }),
      {
        ...{ id: ids.commands, type: 'inject', z: ids.outboxTab, x: 160, y: 80, name: 'valve command' },
        ...{ props: [{ p: 'payload' }], payload: '{"valve":"V12","open":true}', payloadType: 'json' },
        ...{ repeat: '', once: false, wires: [[ids.out]] },
      },
      mqttOutNode({
        ...{ id: ids.out, broker: ids.remote, z: ids.outboxTab, x: 420, y: 80, name: 'valve commands' },
        ...{ topic: 'plant/commands', qos: '1', persistence: 'queued' },
      }),
      // A valve step that fails until "fix the flow" runs; what it handles goes out as plant/valves/done.
      // MQTT 5, so the in node reads the command's message id from its user property.
      brokerConfigNode({
        ...{ id: ids.local5, clientId: 'node-red-in-process-v5', embedded: ids.broker },
        ...{ name: 'in-process v5', protocolVersion: 5 },
      }),
      mqttInNode({
        ...{ id: ids.valves, broker: ids.local5, topic: 'valves/cmd', z: ids.outboxTab, x: 160, y: 180 },
        ...{ name: 'valve steps', ack: 'complete', maxDeliveries: 1, wires: [[ids.valveStep], []] },
      }),
      {
        ...{ id: ids.valveStep, type: 'function', z: ids.outboxTab, x: 400, y: 180, outputs: 1 },
        func: "if (!global.get('fixed')) throw new Error('valve stuck'); msg.topic = 'plant/valves/done'; return msg;",
        wires: [[ids.valveDone]],
      },
      mqttOutNode({ id: ids.valveDone, broker: ids.local, z: ids.outboxTab, x: 620, y: 180, qos: '1' }),
      {
        ...{ id: ids.fix, type: 'inject', z: ids.outboxTab, x: 160, y: 260, name: 'fix the flow' },
        ...{ props: [{ p: 'payload' }], payload: 'true', payloadType: 'bool', repeat: '', once: false },
        wires: [[ids.fixStep]],
      },
      {
        ...{ id: ids.fixStep, type: 'change', z: ids.outboxTab, x: 400, y: 260 },
        rules: [{ t: 'set', p: 'fixed', pt: 'global', to: 'payload', tot: 'msg' }],
        wires: [[]],
      },
    ];
    const deployed = await fetch(`${nodeRed.baseUrl}/flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flows),
    });
    assert.ok(deployed.ok, `POST /flows answered ${deployed.status} ${await deployed.text()}`);

    // Two clients from outside Node-RED: a sensor (MQTT 3.1.1) and a dashboard (MQTT 5) subscribed to plant/#.
    const url = `mqtt://127.0.0.1:${brokerPort}`;
    await waitFor(
      async () => {
        const probe = await mqtt.connectAsync(url, { reconnectPeriod: 0 }).catch(() => undefined);
        await probe?.endAsync();
        return probe !== undefined;
      },
      'the embedded broker to listen',
      20_000,
    );
    const sensor = await mqtt.connectAsync(url, { clientId: 'sensor-1', protocolVersion: 4, keepalive: 30 });
    const dashboard = await mqtt.connectAsync(url, { clientId: 'dashboard', protocolVersion: 5 });
    clients.push(sensor, dashboard);
    dashboard.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }));
    await dashboard.subscribeAsync('plant/#', { qos: 1 });
    let reading = 0;
    readings = setInterval(() => sensor.publish('plant/line1/temp', String(20 + (reading++ % 10) / 10)), 200);
    await sensor.publishAsync('plant/line1/config', JSON.stringify({ mode: 'auto', setpoint: 21.5 }), {
      qos: 1,
      retain: true,
    });

    const screenshots = mkdtempSync(path.join(os.tmpdir(), 'durable-mqtt-sidebar-screenshots-'));
    console.log(`# screenshots of the sidebar: ${screenshots}`);
    browser = await chromium.launch({ executablePath: chromiumBinary, args: ['--no-sandbox'] });
    editor = await Editor.open(browser, nodeRed.baseUrl, screenshots);
    await editor.page.setViewportSize({ width: 1400, height: 1100 });
    await widenSidebar(160);
    await editor.page.evaluate((tab) => RED.workspaces.show(tab), ids.brokerTab);
  });

  after(async () => {
    clearInterval(readings);
    await Promise.all(clients.map((client) => client.endAsync()));
    await proxy?.cut();
    await browser?.close();
    nodeRed?.kill();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it('watches the runtime only while the tab is shown: a watch when it appears, none while another tab is', () =>
    showingOutput(async () => {
      const page = editor.page;
      const watches: number[] = [];
      page.on('request', (request) => {
        if (request.method() === 'POST' && request.url().endsWith(MONITOR_ROUTES.watch))
          watches.push(Date.now());
      });
      await page.evaluate(() => RED.actions.invoke('durable-mqtt:show-sidebar'));
      sidebar = page.locator('.durable-mqtt-sidebar');
      await sidebar.waitFor();
      await waitFor(() => watches.length > 0, 'a watch once the tab is shown');
      await editor.showSidebar('info');
      const hiddenAt = Date.now();
      await page.waitForTimeout(WATCH_RENEW_MS + 1_500);
      assert.deepEqual(
        watches.filter((at) => at > hiddenAt),
        [],
        'no watch while the info tab is shown',
      );
      const shownAt = Date.now();
      await page.evaluate(() => RED.actions.invoke('durable-mqtt:show-sidebar'));
      await waitFor(() => watches.some((at) => at >= shownAt), 'a watch once the tab is shown again');
    }));

  it("shows the embedded broker's listener and its two network clients, with their protocol and subscriptions", () =>
    showingOutput(async () => {
      const broker = sidebar.locator(`[data-broker-id="${ids.broker}"]`);
      await broker.locator('.durable-mqtt-sidebar-card-title', { hasText: 'plant broker' }).waitFor();
      assert.match(
        await broker.locator('.durable-mqtt-sidebar-line').innerText(),
        new RegExp(`tcp ${brokerPort}`),
      );
      const sensor = broker.locator('[data-client-id="sensor-1"]');
      const dashboard = broker.locator('[data-client-id="dashboard"]');
      await sensor.waitFor();
      await dashboard.waitFor();
      assert.equal(await sensor.locator('.durable-mqtt-sidebar-protocol').innerText(), 'MQTT 3.1.1');
      assert.equal(await dashboard.locator('.durable-mqtt-sidebar-protocol').innerText(), 'MQTT 5');
      assert.match(
        await sensor.locator('.durable-mqtt-sidebar-origin').innerText(),
        /127\.0\.0\.1:\d+, keep-alive 30\u00a0s/,
      );
      assert.equal(
        await sensor.locator('.durable-mqtt-sidebar-subscriptions').innerText(),
        texts.broker['no-subscription'],
      );
      assert.equal(
        await dashboard.locator('.durable-mqtt-sidebar-subscriptions').innerText(),
        'Subscribed to plant/# (1)',
      );
      // The sensor's readings (5 a second) show in the rates: in from the sensor, out to the subscribers.
      for (const direction of ['in', 'out'])
        await waitFor(
          async () =>
            !/^0\/s$/.test(await broker.locator(`.durable-mqtt-sidebar-rate-${direction}`).innerText()),
          `a PUBLISH rate ${direction} above 0/s`,
          20_000,
        );
      assert.notEqual(await broker.locator('.durable-mqtt-sidebar-line-in').getAttribute('points'), '');
    }));

  it('lists the retained message under its topic levels with its JSON preview, and deletes it after a confirmation', () =>
    showingOutput(async () => {
      const page = editor.page;
      const broker = sidebar.locator(`[data-broker-id="${ids.broker}"]`);
      await broker.locator('.durable-mqtt-sidebar-retained-section .durable-mqtt-sidebar-subheader').click();
      for (const topic of ['plant', 'plant/line1', 'plant/line1/config'])
        await broker.locator(`[data-topic="${topic}"] > .durable-mqtt-sidebar-topic-row`).click();
      const preview = broker.locator('[data-topic="plant/line1/config"] .durable-mqtt-sidebar-preview');
      assert.equal(await preview.innerText(), JSON.stringify({ mode: 'auto', setpoint: 21.5 }, null, 2));
      assert.equal(
        await broker.locator('[data-topic="plant/line1/config"] .durable-mqtt-sidebar-kind').innerText(),
        texts.retained.kind.json,
      );
      await editor.screenshotTo(path.join(DOCS, 'sidebar-broker.png'), page.locator('#red-ui-sidebar'));

      await broker.locator('[data-topic="plant/line1/config"] .durable-mqtt-sidebar-button').click();
      await confirm(/Delete the retained message of "plant\/line1\/config"/);
      await broker.locator('[data-topic="plant/line1/config"]').waitFor({ state: 'detached' });
      // The broker itself holds it no more.
      const route = MONITOR_ROUTES.retained.replace(':id', ids.broker);
      const listing: RetainedListing = await (await fetch(`${nodeRed!.baseUrl}${route}?topic=%23`)).json();
      assert.deepEqual(
        listing.messages.map((message) => message.topic),
        [],
      );
    }));

  it('shows the outbox growing while its broker is unreachable, then draining once the broker is back', () =>
    showingOutput(async () => {
      const outbox = sidebar.locator(`[data-outbox-id="${ids.out}"]`);
      await outbox.waitFor();
      for (let sent = 1; sent <= 3; sent++) {
        await inject(ids.commands);
        await waitForOutboxDepth(sent);
      }
      const connection = sidebar.locator(`[data-connection-id="${ids.remote}"]`);
      assert.notEqual(
        await connection.locator('.durable-mqtt-sidebar-state').getAttribute('data-state'),
        'connected',
      );
      // The brokers folded, the connections and the outbox fit in the picture.
      await toggleSection('brokers');
      await editor.screenshotTo(
        path.join(DOCS, 'sidebar-outbox.png'),
        editor.page.locator('#red-ui-sidebar'),
      );
      await toggleSection('brokers');

      await proxy.open();
      // The connection retries with a backoff of up to a minute between attempts.
      await waitForOutboxDepth(0, 90_000);
      await connection.locator('.durable-mqtt-sidebar-state[data-state="connected"]').waitFor();
      await waitFor(
        () => received.filter((message) => message.topic === 'plant/commands').length === 3,
        'the dashboard to receive the three commands',
      );
    }));

  it('purges an outbox after a confirmation', () =>
    showingOutput(async () => {
      await proxy.cut();
      const connection = sidebar.locator(`[data-connection-id="${ids.remote}"]`);
      await connection.locator('.durable-mqtt-sidebar-state:not([data-state="connected"])').waitFor();
      await inject(ids.commands);
      await inject(ids.commands);
      await waitForOutboxDepth(2);
      await sidebar.locator(`[data-outbox-id="${ids.out}"] .durable-mqtt-sidebar-purge`).click();
      await confirm(/Purge the outbox of valve commands\?/);
      await waitForOutboxDepth(0);
      await editor.page
        .locator('.red-ui-notification', { hasText: 'Outbox of valve commands purged: 2 deleted.' })
        .waitFor();
      assert.equal(await outboxDepth(), 0);
    }));

  it("tells a refused action in the editor's language: a 429 answer to retry now", () =>
    showingOutput(async () => {
      const page = editor.page;
      const route = MONITOR_ROUTES.retryOutbox.replace(':id', ids.out);
      // The runtime's own limit would take a burst of requests to reach; this answer stands for it.
      await page.route(`**${route}`, (request) =>
        request.fulfill({ status: 429, headers: { 'Retry-After': '7' }, body: '{}' }),
      );
      await sidebar.locator(`[data-outbox-id="${ids.out}"] .durable-mqtt-sidebar-retry`).click();
      const expected = `Retrying the outbox of valve commands failed: too many requests; try again in 7 s.`;
      await page.locator('.red-ui-notification-error', { hasText: expected }).waitFor();
      await page.unroute(`**${route}`);
    }));

  it('counts the copies a dedupe node let through and the duplicates it caught', () =>
    showingOutput(async () => {
      await inject(ids.repeat);
      await inject(ids.repeat);
      const row = sidebar.locator(`.durable-mqtt-sidebar-dedupes tr[data-node-id="${ids.dedupe}"]`);
      await waitFor(
        async () => (await row.locator('td').allInnerTexts()).join('|') === 'alarms once|1|1|1',
        'the dedupe row: 1 key, 1 passed, 1 duplicate',
      );
    }));

  it('lists a quarantined message with its error, and releases it into the fixed flow', () =>
    showingOutput(async () => {
      const dashboard = clients[1];
      // A publisher sending a command again while it has no receipt: max deliveries 1 quarantines the copy.
      for (let copy = 0; copy < 2; copy++)
        await dashboard.publishAsync('valves/cmd', 'open V7', {
          qos: 1,
          properties: { userProperties: { [MESSAGE_ID_PROPERTY]: 'cmd-7' } },
        });
      const card = sidebar.locator(`[data-quarantine-id="${ids.valves}"]`);
      await card.getByText('valves/cmd').waitFor({ timeout: 15_000 });
      await card.getByText('valve stuck').waitFor();
      await inject(ids.fix);
      await card.locator('button', { hasText: texts.quarantine.release }).click();
      await waitFor(
        () => received.some(({ topic, payload }) => topic === 'plant/valves/done' && payload === 'open V7'),
        'the released command through the fixed flow',
        15_000,
      );
      await card.getByText('valves/cmd').waitFor({ state: 'detached' });
    }));

  it("reveals a node on the canvas when its row is clicked: the out node's flow tab opens and the node flashes", () =>
    showingOutput(async () => {
      const page = editor.page;
      assert.equal(await page.evaluate(() => RED.workspaces.active()), ids.brokerTab);
      await sidebar.locator(`[data-outbox-id="${ids.out}"] .durable-mqtt-sidebar-card-title`).click();
      await page.waitForFunction((tab) => RED.workspaces.active() === tab, ids.outboxTab);
      await editor.canvasNode(ids.out).locator('.red-ui-flow-node-highlighted').waitFor();
    }));
});
