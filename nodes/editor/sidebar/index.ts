/**
 * The editor side of the package's plugin: the "durable mqtt" sidebar tab, which shows the
 * embedded brokers, the broker configs' connections, the outboxes, the dedupe nodes and the
 * quarantines of the runtime, live, while it is shown. The build bundles this file into
 * dist/plugins/durable-mqtt.html, which Node-RED loads into the editor beside the plugin.
 */
import { t, whenCatalogLoaded } from '../common.js';
import { MonitorFeed } from './feed.js';
import { MonitorSidebar } from './sidebar.js';
import sidebarStyles from './sidebar.css';

const TAB_ID = 'durable-mqtt';
const SHOW_ACTION = 'durable-mqtt:show-sidebar';

/** The tab and its feed while the plugin is in the editor. */
let feed: MonitorFeed | undefined;

function addStyles(): void {
  const id = 'durable-mqtt-sidebar-styles';
  if (document.getElementById(id)) return;
  const style = document.createElement('style');
  style.id = id;
  style.textContent = sidebarStyles;
  document.head.appendChild(style);
}

function addTab(): void {
  if (feed) return;
  addStyles();
  const sidebar = new MonitorSidebar();
  const tabFeed = new MonitorFeed(sidebar.content, (snapshot) => sidebar.render(snapshot));
  feed = tabFeed;
  RED.actions.add(SHOW_ACTION, () => RED.sidebar.show(TAB_ID));
  RED.sidebar.addTab({
    id: TAB_ID,
    label: t('sidebar.label'),
    name: t('sidebar.name'),
    iconClass: 'fa fa-tachometer',
    content: sidebar.content,
    action: SHOW_ACTION,
    enableOnEdit: true,
    // The sidebar shows the tab's wrapper right after this call: look once it has.
    onchange: () => setTimeout(() => tabFeed.check(), 0),
    onremove: () => tabFeed.check(),
  });
  tabFeed.attach();
}

function removeTab(): void {
  if (!feed) return;
  feed.detach();
  feed = undefined;
  RED.sidebar.removeTab(TAB_ID);
  RED.actions.remove(SHOW_ACTION);
}

RED.plugins.registerPlugin('durable-mqtt-sidebar', {
  onadd: () => whenCatalogLoaded(addTab),
  onremove: removeTab,
});
