/**
 * The part of Node-RED's editor API (the page's global RED and its jQuery widgets) that
 * the dialogs use. Node-RED publishes no types for it: these are written from its
 * documentation (nodered.org/docs/creating-nodes) and its editor source, version 4.
 */

/** A node as the editor holds it, of any type. */
export interface EditorNode {
  id: string;
  type: string;
  /** The flow tab (or subflow) it is on; none for a config node of all flows. */
  z?: string;
  /** Disabled. */
  d?: boolean;
  name?: unknown;
  /** Its type's definition, as registered. */
  _def: { defaults: Record<string, { value?: unknown }> };
  /** While its dialog is open: the credentials the runtime sent (passwords only as has_<name>). */
  credentials?: Record<string, unknown>;
}

/**
 * A node of one type: the properties its definition declares, as the flow holds them. A flow
 * written by an older version or by hand may lack any of them.
 */
export type NodeOf<Properties> = EditorNode & Partial<Properties>;

/** What Node-RED passes a validator besides the value. */
export interface ValidateOptions {
  label?: string;
}

/**
 * A property of a node type. Node-RED shows the text a validator returns only when the
 * validator declares two parameters (value, options); one declaring one gets a plain red border.
 */
export interface PropertyDefinition<Node> {
  /** The default, for a new node; a config node reference has none. */
  value?: unknown;
  required?: boolean;
  /** The type of config node it refers to. */
  type?: string;
  validate?: (this: Node, value: unknown, options?: ValidateOptions) => boolean | string;
}

export interface NodeDefinition<Properties> {
  category: string;
  color?: string;
  paletteLabel?: string;
  defaults: { [Name in keyof Properties]: PropertyDefinition<NodeOf<Properties>> };
  credentials?: Record<string, { type: 'text' | 'password' }>;
  inputs?: number;
  outputs?: number;
  align?: 'left' | 'right';
  /** A function gives each node its icon; the palette calls it without a node. */
  icon?: string | ((this: NodeOf<Properties> | undefined) => string);
  label?(this: NodeOf<Properties>): string;
  labelStyle?(this: NodeOf<Properties>): string;
  inputLabels?(this: NodeOf<Properties>, index: number): string;
  outputLabels?(this: NodeOf<Properties>, index: number): string;
  oneditprepare?(this: NodeOf<Properties>): void;
  oneditsave?(this: NodeOf<Properties>): void;
  oneditcancel?(this: NodeOf<Properties>): void;
  oneditdelete?(this: NodeOf<Properties>): void;
}

/** A flow tab or a subflow, for its name. */
export interface EditorWorkspace {
  id: string;
  label?: string;
  name?: string;
}

export interface EditorTab {
  id: string;
  label: string;
}

export interface EditorTabs {
  addTab(tab: EditorTab): void;
  resize(): void;
}

export interface EditorApi {
  /** A message of a catalog, `namespace:key`, with its `__name__` substitutions. */
  _(key: string, substitutions?: Record<string, unknown>): string;
  nodes: {
    registerType<Properties>(type: string, definition: NodeDefinition<Properties>): void;
    node(id: string): EditorNode | null;
    /** Visits every flow node (config nodes aside). */
    eachNode(visit: (node: EditorNode) => void): void;
    workspace(id: string | undefined): EditorWorkspace | undefined;
    subflow(id: string | undefined): EditorWorkspace | undefined;
  };
  utils: {
    getNodeLabel(node: EditorNode, fallback?: string): string;
    validatePropertyExpression(expression: string): boolean;
  };
  view: {
    /** The width in pixels of `text` drawn with the style of `className` (one of the canvas' classes). */
    calculateTextWidth(text: string, className: string): number;
    /** Shows the flow tab of node `id`, scrolls it into view and makes it flash. */
    reveal(id: string): void;
  };
  sidebar: {
    addTab(tab: SidebarTab): void;
    removeTab(id: string): void;
    /** Shows the sidebar with tab `id` active. */
    show(id: string): void;
  };
  /** The editor's WebSocket to the runtime: messages the runtime publishes on a topic. */
  comms: {
    subscribe(topic: string, receive: (topic: string, message: unknown) => void): void;
    unsubscribe(topic: string, receive: (topic: string, message: unknown) => void): void;
  };
  actions: {
    add(name: string, handler: () => void): void;
    remove(name: string): void;
  };
  plugins: {
    /** `onadd` runs when the plugin's script has registered it, `onremove` when its package is removed. */
    registerPlugin(id: string, definition: { onadd?(): void; onremove?(): void }): void;
  };
  popover: {
    /** The editor's tooltip on `target`: `content` as text, shown on hover. */
    tooltip(target: JQuery, content: string): void;
  };
  user: {
    /** Whether the signed-in user has `permission` ("durable-mqtt.write"…); true without adminAuth. */
    hasPermission(permission: string): boolean;
  };
  tabs: {
    create(options: { id: string; onchange(tab: EditorTab): void }): EditorTabs;
  };
  notify(message: string, type?: 'error' | 'warning' | 'success'): void;
  /** A string is HTML: texts that hold names or topics come as an element. */
  notify(message: string | JQuery, options: NotifyOptions): EditorNotification;
  settings: { httpNodeRoot?: string };
  i18n: {
    /** Fetches the catalog of `namespace` in the editor's languages, then calls `done`. */
    loadNodeCatalog(namespace: string, done: () => void): void;
  };
}

/** A tab of the editor's sidebar (RED.sidebar.addTab). */
export interface SidebarTab {
  id: string;
  /** The tab's short title, and its name in the View menu and tooltip. */
  label: string;
  name: string;
  iconClass: string;
  content: JQuery;
  /** The action that shows the tab, whose shortcut the tab's tooltip shows. */
  action?: string;
  /** Keeps the tab usable while an edit dialog is open. */
  enableOnEdit?: boolean;
  /** When the tab becomes the active one (not when another takes its place). */
  onchange?(): void;
  /** When the tab is closed. */
  onremove?(): void;
}

export interface NotifyButton {
  text: string;
  class?: string;
  click(): void;
}

export interface NotifyOptions {
  type?: 'error' | 'warning' | 'success' | 'compact';
  /** Stays until closed. */
  fixed?: boolean;
  /** Shades the editor until closed. */
  modal?: boolean;
  buttons?: NotifyButton[];
}

export interface EditorNotification {
  close(): void;
}

export interface TypedInputOptions {
  types: string[];
  default?: string;
  /** The hidden input that holds the chosen type. */
  typeField?: string;
}

export interface EditableListOptions<Item> {
  addItem(row: JQuery, index: number, item: Item): void;
  removeItem?(item: Item): void;
  addButton?: string;
  height?: number | 'auto';
  removable?: boolean;
  sortable?: boolean;
}

declare global {
  const RED: EditorApi;

  // Node-RED's widgets, jQuery plugins; the type parameter is jQuery's own.
  interface JQuery<TElement = HTMLElement> {
    typedInput(options: TypedInputOptions): JQuery<TElement>;
    typedInput(method: 'value'): string;
    typedInput(method: 'value', value: string): JQuery<TElement>;
    editableList<Item>(options: EditableListOptions<Item>): JQuery<TElement>;
    editableList(method: 'length'): number;
    editableList(method: 'items'): JQuery;
    editableList<Item>(method: 'addItem', item: Item): JQuery<TElement>;
  }
}
