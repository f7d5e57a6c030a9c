import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { showingOutputOnFailure } from './failure-output.js';

/** The part of the editor's global RED object these tests read in the page. */
interface EditorNode {
  id: string;
  type: string;
  z?: string;
  valid?: boolean;
  validationErrors?: string[];
}
declare const RED: {
  nodes: {
    eachNode(callback: (node: EditorNode) => void): void;
    eachConfig(callback: (node: EditorNode) => void): void;
    node(id: string): EditorNode | null;
    dirty(): boolean;
    import(nodes: object[]): void;
    getType(type: string): { category?: string } | undefined;
  };
  view: {
    selection(): { nodes?: EditorNode[] };
    importNodes(nodes: Record<string, unknown>[]): void;
    redraw(updateActive?: boolean): void;
  };
  workspaces: { active(): string; show(id: string): void };
};

/** A node that would not deploy cleanly: the editor marks it invalid, with the reasons. */
export interface InvalidNode {
  id: string;
  type: string;
  errors: string[];
}

/**
 * Node-RED's editor in Chromium, driven as a user drives it: the palette, the
 * canvas, the edit dialogs, the menus and the sidebar. Read-only checks go
 * through the page's RED object where the DOM would only say the same less clearly.
 */
export class Editor {
  private screenshotCount = 0;

  private constructor(
    readonly page: Page,
    private readonly baseUrl: string,
    private readonly screenshots: string,
  ) {}

  /** `packageInstalled` false: a Node-RED without this package, whose palette shows only the core nodes. */
  static async open(
    browser: Browser,
    baseUrl: string,
    screenshots: string,
    packageInstalled = true,
  ): Promise<Editor> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(20_000);
    const editor = new Editor(page, baseUrl, screenshots);
    if (packageInstalled) await editor.load();
    else {
      await page.goto(baseUrl);
      await editor.paletteNode('inject').waitFor();
    }
    return editor;
  }

  /** Loads (or reloads) the editor and waits until the palette shows this package's nodes. */
  async load(): Promise<void> {
    await this.page.goto(this.baseUrl);
    await this.page.locator('#red-ui-palette-durable_mqtt .red-ui-palette-node').first().waitFor();
  }

  /**
   * Saves a PNG of the page (or of `part`) in the screenshot folder, numbered in the
   * order taken, after closing the notifications that would hide the top of the canvas.
   */
  async screenshot(name: string, part?: Locator): Promise<string> {
    const file = path.join(
      this.screenshots,
      `${String(++this.screenshotCount).padStart(2, '0')}-${name}.png`,
    );
    await this.screenshotTo(file, part);
    return file;
  }

  /** Saves a PNG of the page, of `part`, or of a rectangle of the page, at `file`. */
  async screenshotTo(
    file: string,
    part?: Locator | { x: number; y: number; width: number; height: number },
  ): Promise<void> {
    await this.dismissNotifications();
    // Trays slide in and out: let them settle first.
    await this.page.waitForTimeout(400);
    // The debug sidebar's clock times would make each run's picture differ from the last one.
    const style = '.red-ui-debug-msg-date { visibility: hidden; }';
    if (part && 'screenshot' in part) await part.screenshot({ path: file, style, animations: 'disabled' });
    else await this.page.screenshot({ path: file, clip: part, style, animations: 'disabled' });
  }

  /**
   * Closes the notifications on screen ("Successfully deployed"…) as a click on each does. One that
   * a click does not close (a notification with buttons, such as the palette manager's) is taken off
   * the page: it is only in the way of a picture.
   */
  async dismissNotifications(): Promise<void> {
    const notifications = this.page.locator('#red-ui-notifications .red-ui-notification');
    for (let left = await notifications.count(); left > 0; left = await notifications.count()) {
      const first = notifications.first();
      // One that closes by itself meanwhile (a deploy's, after a few seconds) leaves nothing to click.
      await first.click({ timeout: 3_000 }).catch(() => undefined);
      const closed = await this.page
        .waitForFunction(
          (before) => document.querySelectorAll('#red-ui-notifications .red-ui-notification').length < before,
          left,
          { timeout: 3_000 },
        )
        .then(
          () => true,
          () => false,
        );
      if (!closed) await first.evaluate((element) => element.remove());
    }
  }

  paletteNode(type: string): Locator {
    return this.page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
  }

  /** The palette category a node type registered with ('config' for a config node). */
  async categoryOf(type: string): Promise<string | undefined> {
    return this.page.evaluate((name) => RED.nodes.getType(name)?.category, type);
  }

  /** Adds `nodes` to the flow shown, as Import does: a node whose type is not installed shows as unknown. */
  async importNodes(nodes: Record<string, unknown>[]): Promise<void> {
    await this.page.evaluate(
      (list) => RED.view.importNodes(list.map((node) => ({ ...node, z: RED.workspaces.active() }))),
      nodes,
    );
  }

  /** Waits until node `id` is of `type`: an unknown node becomes one when its type registers. */
  async waitForNodeType(id: string, type: string): Promise<void> {
    await this.page.waitForFunction(([node, wanted]) => RED.nodes.node(node)?.type === wanted, [id, type]);
  }

  canvasNode(id: string): Locator {
    return this.page.locator(`#red-ui-workspace-chart [id="${id}"]`);
  }

  /** The text of a canvas node's label, and its width in pixels as drawn. */
  async canvasLabel(id: string): Promise<{ text: string; width: number }> {
    return this.canvasNode(id)
      .locator('.red-ui-flow-node-label')
      .evaluate((label) => ({
        text: label.textContent ?? '',
        width: (label as unknown as SVGGraphicsElement).getBBox().width,
      }));
  }

  /** The file name of the icon a canvas node shows. */
  async canvasIcon(id: string): Promise<string> {
    const href = await this.canvasNode(id)
      .locator('.red-ui-flow-node-icon')
      .evaluate((icon) => icon.getAttribute('xlink:href') ?? icon.getAttribute('href'));
    return path.basename(href ?? '');
  }

  /** The rectangle of the page that holds the canvas nodes `ids` (their status under them too), with a margin. */
  async areaOf(ids: string[], margin = 30): Promise<{ x: number; y: number; width: number; height: number }> {
    const boxes = [];
    for (const id of ids) boxes.push((await this.canvasNode(id).boundingBox())!);
    const left = Math.min(...boxes.map((box) => box.x)) - margin;
    const top = Math.min(...boxes.map((box) => box.y)) - margin;
    const right = Math.max(...boxes.map((box) => box.x + box.width)) + margin;
    const bottom = Math.max(...boxes.map((box) => box.y + box.height)) + margin;
    return { x: left, y: top, width: right - left, height: bottom - top };
  }

  /** Adds nodes to the flow tab on screen, each at its own x and y, as an import does without the drag. */
  async addNodes(nodes: object[]): Promise<void> {
    await this.page.evaluate((flow) => {
      const z = RED.workspaces.active();
      RED.nodes.import(flow.map((node) => ({ ...node, z, wires: [] })));
      RED.view.redraw(true);
    }, nodes);
  }

  /** Sets properties of a node on the canvas, as its dialog would, without the dialog. */
  async setProperties(id: string, properties: Record<string, unknown>): Promise<void> {
    await this.page.evaluate(({ node, values }) => Object.assign(RED.nodes.node(node)!, values), {
      node: id,
      values: properties,
    });
  }

  /** Opens the flow tab a node is on. */
  async showFlowOf(id: string): Promise<void> {
    await this.page.evaluate((node) => RED.workspaces.show(RED.nodes.node(node)!.z!), id);
    await this.canvasNode(id).waitFor();
  }

  /** Drags a node from the palette onto the canvas at (x, y) of the visible chart; returns its id. */
  async dragFromPalette(type: string, x: number, y: number): Promise<string> {
    const source = this.paletteNode(type);
    await source.scrollIntoViewIfNeeded();
    const from = (await source.boundingBox())!;
    const chart = (await this.page.locator('#red-ui-workspace-chart').boundingBox())!;
    const mouse = this.page.mouse;
    await mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await mouse.down();
    // jQuery UI starts a drag only after the pointer has moved a little with the button down.
    await mouse.move(from.x + from.width / 2 + 20, from.y + from.height / 2 + 5, { steps: 5 });
    await mouse.move(chart.x + x, chart.y + y, { steps: 20 });
    await mouse.up();
    const id = await this.page.evaluate(() => RED.view.selection().nodes?.[0]?.id);
    if (!id) throw new Error(`dropping ${type} on the canvas added no node`);
    return id;
  }

  /** Drags a wire from output `port` (0: the first) of `from` to the input port of `to`. */
  async wire(from: string, to: string, port = 0): Promise<void> {
    const output = (await this.canvasNode(from)
      .locator('.red-ui-flow-port-output .red-ui-flow-port')
      .nth(port)
      .boundingBox())!;
    const input = (await this.canvasNode(to)
      .locator('.red-ui-flow-port-input .red-ui-flow-port')
      .boundingBox())!;
    const mouse = this.page.mouse;
    await mouse.move(output.x + output.width / 2, output.y + output.height / 2);
    await mouse.down();
    await mouse.move(input.x + input.width / 2, input.y + input.height / 2, { steps: 10 });
    await mouse.up();
  }

  /** Opens the edit dialog of a canvas node, as a double click does. */
  async editNode(id: string): Promise<void> {
    await this.canvasNode(id).locator('.red-ui-flow-node').dblclick();
    await this.waitForTray();
  }

  /** Opens the dialog of the config node a node's field refers to: "edit" (pencil) or "add" (+). */
  async openConfigDialog(field: string, button: 'edit' | 'add'): Promise<void> {
    await this.page.click(`#node-input-btn-${field}-${button}`);
    await this.waitForTray();
  }

  /**
   * Waits until the newest tray has opened: its last step moves the focus into it,
   * and keys typed before that would land elsewhere.
   */
  private async waitForTray(): Promise<void> {
    await this.page.waitForFunction(() => {
      const trays = document.querySelectorAll('#red-ui-editor-stack .red-ui-tray');
      const top = trays[trays.length - 1];
      return top !== undefined && document.activeElement !== null && top.contains(document.activeElement);
    });
  }

  /** Done: closes the node's edit dialog, keeping the changes. */
  async closeDialog(): Promise<void> {
    await this.page.click('#node-dialog-ok');
    await this.page.locator('#node-dialog-ok').waitFor({ state: 'detached' });
  }

  async cancelDialog(): Promise<void> {
    await this.page.click('#node-dialog-cancel');
    await this.page.locator('#node-dialog-cancel').waitFor({ state: 'detached' });
  }

  /**
   * Types into a field key by key, as a user does (the editor validates on keyup).
   * A field made a typed input is hidden behind the one the user types into.
   */
  async typeInto(selector: string, text: string): Promise<void> {
    let field = this.page.locator(selector);
    if (!(await field.isVisible()))
      field = this.page.locator(`${selector} + .red-ui-typedInput-container input.red-ui-typedInput-input`);
    await field.fill('');
    await field.pressSequentially(text);
  }

  /** Chooses the type of a typed input ("str", "msg", "env"…) from its drop-down. */
  async chooseInputType(selector: string, type: string): Promise<void> {
    await this.page.click(`${selector} + .red-ui-typedInput-container button.red-ui-typedInput-type-select`);
    await this.page.click(`.red-ui-typedInput-options:visible a[value="${type}"]`);
  }

  /** The labels of a canvas node's output ports, as their tooltips show them. */
  async outputLabels(id: string): Promise<string[]> {
    return this.page.evaluate((node) => {
      const found = RED.nodes.node(node) as unknown as {
        outputs: number;
        _def: { outputLabels(this: unknown, index: number): string };
      };
      return Array.from({ length: found.outputs }, (_, index) => found._def.outputLabels.call(found, index));
    }, id);
  }

  /** Whether the editor shows the field as invalid (red border). */
  async isMarkedInvalid(selector: string): Promise<boolean> {
    return this.page.locator(selector).evaluate((field) => field.classList.contains('input-error'));
  }

  /**
   * The choices of the open dialog's visible drop-downs whose text is wider than the drop-down
   * shows (beside the arrow), as "field id: text".
   */
  async cutOffChoices(): Promise<string[]> {
    return this.page.evaluate(() => {
      /** The width Chromium keeps for a drop-down's arrow, right of the text. */
      const ARROW = 24;
      const tray = Array.from(document.querySelectorAll('#red-ui-editor-stack .red-ui-tray')).pop()!;
      const measure = document.createElement('canvas').getContext('2d')!;
      return Array.from(tray.querySelectorAll('select'))
        .filter((select) => select.offsetParent !== null)
        .flatMap((select) => {
          const style = getComputedStyle(select);
          measure.font = style.font;
          const room = select.clientWidth - parseFloat(style.paddingLeft) - ARROW;
          return Array.from(select.options)
            .filter((option) => measure.measureText(option.text).width > room)
            .map((option) => `${select.id}: ${option.text}`);
        });
    });
  }

  /** Nodes (config nodes included) the editor holds as invalid, with the validation messages. */
  async invalidNodes(): Promise<InvalidNode[]> {
    // No named functions in page code: the test's TypeScript build would wrap them in a helper the page lacks.
    return this.page.evaluate(() => {
      const nodes: EditorNode[] = [];
      RED.nodes.eachNode((node) => void nodes.push(node));
      RED.nodes.eachConfig((node) => void nodes.push(node));
      return nodes
        .filter((node) => node.valid === false)
        .map((node) => ({ id: node.id, type: node.type, errors: node.validationErrors ?? [] }));
    });
  }

  /** Deploys, and waits until the editor has nothing left to deploy. */
  async deploy(): Promise<void> {
    await this.page.click('#red-ui-header-button-deploy');
    await this.page.waitForFunction(() => !RED.nodes.dirty());
  }

  /** The status text a node shows under it on the canvas. */
  async statusText(id: string): Promise<string> {
    return (await this.canvasNode(id).locator('.red-ui-flow-node-status-label').textContent()) ?? '';
  }

  async waitForStatus(id: string, accept: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.statusText(id);
      if (accept(text)) return text;
      if (Date.now() > deadline) throw new Error(`node ${id} shows the status "${text}"`);
      await this.page.waitForTimeout(100);
    }
  }

  /** Opens a sidebar tab: "info", "help", "debug", "config"… */
  async showSidebar(tab: string): Promise<Locator> {
    await this.page.click(`#red-ui-tab-${tab}-link-button`);
    const content = this.page.locator(`#red-ui-sidebar-content > div:visible`).first();
    await content.waitFor();
    return content;
  }

  /** Menu → Import → Examples → module → example, onto a new flow tab; returns that tab's id. */
  async importExample(module: string, example: string): Promise<string> {
    const page = this.page;
    const before = await page.evaluate(() => RED.workspaces.active());
    await page.click('#red-ui-header-button-sidemenu');
    await page.click('#menu-item-import');
    try {
      await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
      const library = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
      const moduleEntry = library.locator('.red-ui-treeList-label', { hasText: module });
      const exampleEntry = library.locator('.red-ui-treeList-label', { hasText: example });
      // A folder of the library loads its entries when it opens, then slides them down: a click
      // meanwhile may land on a row that is still moving. Each click waits until the tree is at rest.
      await moduleEntry.waitFor();
      await this.waitForLibraryAtRest();
      // The dialog is new each time, its module folders closed (a click on an open one would close it).
      if (!(await moduleEntry.evaluate((label) => label.parentElement!.classList.contains('expanded'))))
        await moduleEntry.click();
      await exampleEntry.waitFor();
      await this.waitForLibraryAtRest();
      await exampleEntry.click();
      // Selecting an example (a file, not a folder) enables Import.
      await page.locator('#red-ui-clipboard-dialog-ok:enabled').waitFor();
      await page.locator('#red-ui-clipboard-dialog-import-opt-new').click();
      await page.click('#red-ui-clipboard-dialog-ok');
    } catch (error) {
      // Left open, the dialog would cover the editor for the tests that follow.
      if (await page.locator('#red-ui-clipboard-dialog-cancel').isVisible())
        await page.click('#red-ui-clipboard-dialog-cancel');
      throw error;
    }
    // Import fetches the example, then opens the new flow tab with the example's nodes following
    // the pointer, until a click puts them down.
    await page
      .waitForFunction((tab) => RED.workspaces.active() !== tab, before)
      .catch(() => {
        throw new Error(`importing ${example} opened no new flow tab`);
      });
    const chart = (await page.locator('#red-ui-workspace-chart').boundingBox())!;
    await page.mouse.move(chart.x + 380, chart.y + 60, { steps: 5 });
    await page.mouse.click(chart.x + 380, chart.y + 60);
    return page.evaluate(() => RED.workspaces.active());
  }

  /** Waits until the import dialog's library has loaded what it was loading and slid it into place. */
  private async waitForLibraryAtRest(): Promise<void> {
    await this.page.waitForFunction(() => {
      const tree = document.querySelector('#red-ui-clipboard-dialog-import-tab-examples');
      // jQuery's :animated: the editor slides tree folders open with jQuery.
      const jQuery = (window as unknown as { jQuery: (selector: string) => { length: number } }).jQuery;
      return (
        tree !== null &&
        tree.querySelector('.red-ui-treeList-spinner') === null &&
        jQuery('#red-ui-clipboard-dialog-import-tab-examples :animated').length === 0
      );
    });
  }

  /** The ids and types of the nodes on a flow tab. */
  async nodesOn(tab: string): Promise<{ id: string; type: string }[]> {
    return this.page.evaluate((z) => {
      const nodes: { id: string; type: string }[] = [];
      RED.nodes.eachNode((node) => {
        if (node.z === z) nodes.push({ id: node.id, type: node.type });
      });
      return nodes;
    }, tab);
  }

  /** Menu → Settings → View → Language, then a reload, as the editor asks. */
  async switchLanguage(language: string): Promise<void> {
    await this.page.click('#red-ui-header-button-sidemenu');
    await this.page.click('#menu-item-user-settings');
    await this.page.selectOption('#user-settings-editor-language', language);
    await this.page.click('#node-dialog-ok');
    // The settings tray saves the choice once it has closed.
    await this.page.waitForFunction((chosen) => localStorage.getItem('editor-language') === chosen, language);
    await this.load();
  }
}

/**
 * showingOutputOnFailure for a spawned Node-RED and the editor open on it: a picture of the page
 * at each failure, and Node-RED's output at the first. Both are read when a step fails.
 */
export function showingNodeRedAndEditor(
  nodeRed: () => { output: string } | undefined,
  editor: () => Editor | undefined,
): (step: () => Promise<void>) => Promise<void> {
  return showingOutputOnFailure(
    () => `--- Node-RED output ---\n${nodeRed()?.output ?? ''}\n---`,
    async () => {
      const page = editor();
      if (page) console.error(`the page at the failure: ${await page.screenshot('failure')}`);
    },
  );
}
