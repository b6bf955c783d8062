import { strict as assert } from 'node:assert';
import type { Page } from 'playwright-core';
import { Lwm2mClient } from '../../lib/client';
import { launchChromium, openEditor, screenshot, skipWithoutChromium } from './chromium';
import type { Chromium } from './chromium';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

/* eslint-disable @typescript-eslint/no-explicit-any -- page.evaluate bodies run in the editor, where RED is untyped */
declare const RED: any;
declare const $: any;

/**
 * The nodes' edit dialogs in headless Chromium, with the shared editor script
 * (resources/lwm2m-editor.js) as Node-RED serves it: path validation, the server dialog's tabs, the path
 * autocomplete.
 */
describe('node edit dialogs in the Node-RED editor (headless Chromium)', function () {
  this.timeout(90000);
  let red: NodeRedProcess | undefined;
  let browser: Chromium | undefined;
  let page: Page | undefined;
  let device: Lwm2mClient | undefined;
  const pageErrors: string[] = [];

  before(async function () {
    skipWithoutChromium(this);
    red = await startNodeRed([
      { id: 'f1', type: 'tab', label: 'LwM2M' },
      { id: 'srv', type: 'lwm2m-server', name: 'forms server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
      { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 140, y: 80, wires: [[]] },
      { id: 'bad', type: 'lwm2m-read', z: 'f1', server: 'srv', path: '/3303/x/5700', x: 140, y: 140, wires: [[]] },
      {
        id: 'composite',
        type: 'lwm2m-read',
        z: 'f1',
        server: 'srv',
        path: '/3303/0/5700, /3/0/9',
        x: 140,
        y: 200,
        wires: [[]],
      },
      { id: 'exec', type: 'lwm2m-execute', z: 'f1', server: 'srv', path: '/3/0', x: 140, y: 260, wires: [[]] },
      { id: 'rd', type: 'lwm2m-read', z: 'f1', server: 'srv', x: 140, y: 320, wires: [[]] },
      {
        id: 'inj',
        type: 'inject',
        z: 'f1',
        props: [{ p: 'payload' }],
        repeat: '',
        crontab: '',
        once: false,
        payload: '',
        payloadType: 'date',
        x: 120,
        y: 400,
        wires: [['rd7', 'rdbad']],
      },
      {
        id: 'rd7',
        type: 'lwm2m-read',
        z: 'f1',
        server: 'srv',
        endpoint: 'forms-dev',
        path: '/3303/7/5700',
        x: 340,
        y: 380,
        wires: [[]],
      },
      {
        id: 'rdbad',
        type: 'lwm2m-read',
        z: 'f1',
        server: 'srv',
        endpoint: 'forms-dev',
        path: '/3303/7/9999',
        x: 340,
        y: 440,
        wires: [[]],
      },
    ]);
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await openEditor(page, red, 'f1');
  });

  after(async function () {
    await browser?.close();
    await device?.stop({ timeoutMs: 500 }).catch(() => undefined);
    await red?.stop();
  });

  /** The device `forms-dev`, with an instance 7 of object 3303, registered with the flow's server. */
  const startDevice = async () => {
    if (device) return;
    const servers = (await page!.evaluate(
      () => new Promise((resolve, reject) => $.getJSON('lwm2m/servers').then(resolve, reject)),
    )) as { servers: { id: string; port?: number }[] };
    const port = servers.servers.find((server) => server.id === 'srv')!.port;
    device = new Lwm2mClient({
      endpointName: 'forms-dev',
      serverUri: `coap://127.0.0.1:${port}`,
      lifetime: 60,
      objects: [{ id: 3303, instances: { 7: {} } }],
    });
    await device.start();
  };

  /** Cancels the open node dialog (the editor's own action: a click could land on a suggestion list). */
  const cancelDialog = async () => {
    await page!.evaluate(() => RED.actions.invoke('core:cancel-edit-tray'));
    await waitFor('the dialog closed', () => page!.evaluate(() => $('#node-dialog-cancel').length === 0));
  };

  afterEach(async function () {
    // A dialog left open by a failed test would hide the next one's.
    await page?.evaluate(() => RED.tray.close && $('.red-ui-tray').length && RED.tray.close()).catch(() => undefined);
  });

  it('marks an invalid path invalid, on the node and in its dialog, and takes a composite list', async function () {
    const validity = await page!.evaluate(() =>
      ['bad', 'composite', 'exec'].map((id) => {
        const node = RED.nodes.node(id);
        return { id, valid: node.valid, errors: node.validationErrors ?? [] };
      }),
    );
    assert.deepEqual(validity, [
      { id: 'bad', valid: false, errors: ['an LwM2M path like /3303/0/5700, or several separated by commas'] },
      { id: 'composite', valid: true, errors: [] },
      // Execute takes a resource path only (/3/0 is an instance).
      { id: 'exec', valid: false, errors: ['a resource path like /3/0/4'] },
    ]);

    await page!.evaluate(() => RED.editor.edit(RED.nodes.node('rd')));
    const field = page!.locator('#node-input-path');
    await field.waitFor();
    await field.fill('/3303/0/5700/1/2');
    await field.dispatchEvent('change');
    await waitFor('the path marked invalid', async () =>
      (await field.evaluate((input) => input.classList.contains('input-error'))) ? true : undefined,
    );
    await screenshot(page!, 'path-invalid.png');
    await field.fill('/3303/0/5700,/3/0/9');
    await field.dispatchEvent('change');
    await waitFor('the composite list taken', async () =>
      (await field.evaluate((input) => !input.classList.contains('input-error'))) ? true : undefined,
    );
    await cancelDialog();
    assert.deepEqual(pageErrors, []);
  });

  it('splits the server dialog into tabs with every field, keeps what is typed in a hidden tab, opens the device browser', async function () {
    await page!.evaluate(() => RED.editor.editConfig('', 'lwm2m-server', 'srv'));
    const tabs = page!.locator('#lwm2m-server-tabs .red-ui-tab');
    await tabs.first().waitFor();
    // RED.tabs takes a second click within 400 ms for a double click: click until the tab is the active one.
    const showTab = (label: string) =>
      waitFor(`the ${label} tab`, async () => {
        const tab = tabs.filter({ hasText: label });
        if (await tab.evaluate((li) => li.classList.contains('active'))) return true;
        await tab.click();
        return undefined;
      });
    assert.deepEqual(await tabs.locator('.red-ui-tab-label').allInnerTexts(), [
      'Listeners',
      'Security',
      'Store',
      'Timing',
      'Model',
      'Limits',
    ]);
    // Every setting (and credential) of the node has its field in the dialog, under the same id as before.
    const missing = await page!.evaluate(() => {
      const type = RED.nodes.getType('lwm2m-server');
      return [...Object.keys(type.defaults), ...Object.keys(type.credentials)].filter(
        (name) => $('#node-config-input-' + name).length !== 1,
      );
    });
    assert.deepEqual(missing, []);
    // Each field is in exactly one tab: the first shows the listeners only.
    assert.equal(await page!.locator('#node-config-input-port').isVisible(), true);
    assert.equal(await page!.locator('#node-config-input-maxRegistrations').isVisible(), false);
    await screenshot(page!, 'server-dialog-listeners.png');

    await showTab('Limits');
    const maxRegistrations = page!.locator('#node-config-input-maxRegistrations');
    assert.equal(await maxRegistrations.isVisible(), true);
    assert.equal(await page!.locator('#node-config-input-port').isVisible(), false);
    await maxRegistrations.fill('2500');
    await screenshot(page!, 'server-dialog-limits.png');
    // DTLS is off in this flow: the Security tab says so instead of showing fields that do nothing.
    await showTab('Security');
    await screenshot(page!, 'server-dialog-security.png');
    assert.equal(await page!.locator('.lwm2m-no-dtls-row').isVisible(), true);
    assert.equal(await page!.locator('#node-config-input-certificate').isVisible(), false);
    await showTab('Timing');
    await page!.locator('#node-config-input-ackTimeout').fill('3000');

    await page!.locator('#lwm2m-server-open-browser').click();
    await page!.locator('.lwm2m-db').waitFor({ state: 'visible' });
    await waitFor('the device browser on this server', async () =>
      (await page!.locator('.lwm2m-db-servers').inputValue()) === 'srv' ? true : undefined,
    );
    await screenshot(page!, 'server-dialog-device-browser.png');

    await page!.locator('#node-config-dialog-ok').click();
    const saved = await waitFor('the dialog saved', () =>
      page!.evaluate(() => {
        const node = RED.nodes.node('srv');
        return $('#node-config-dialog-ok').length === 0
          ? { max: node.maxRegistrations, ack: node.ackTimeout }
          : undefined;
      }),
    );
    assert.deepEqual(saved, { max: '2500', ack: '3000' });
    assert.deepEqual(pageErrors, []);
  });

  it('completes a path from the object model, and from the registration of the device the node names', async function () {
    const completions = page!.locator('.red-ui-autoComplete-container');
    const shown = async () => (await completions.isVisible()) && (await completions.innerText());
    /** The suggestion list once `fits` it; on a timeout the error tells what the field and the list held. */
    const listWhere = async (what: string, fits: (list: string) => boolean) => {
      let last: string | false = false;
      try {
        return await waitFor(what, async () => {
          last = await shown();
          return last && fits(last) ? last : undefined;
        });
      } catch (err) {
        const value = await page!.evaluate(() => $('#node-input-path').val());
        throw new Error(
          `${(err as Error).message}: the field holds ${JSON.stringify(value)}, the list ${JSON.stringify(last)}`,
        );
      }
    };

    await page!.evaluate(() => RED.editor.edit(RED.nodes.node('rd')));
    const field = page!.locator('#node-input-path');
    await field.waitFor();
    // Typed once the dialog stands still (a click waits for that), as a user would.
    await field.click();
    await field.pressSequentially('/33');
    // Objects from /33 on only (the list for /3 goes first, as the user types), with their names.
    const pathLines = (list: string) => list.split('\n').filter((line) => line.startsWith('/'));
    await listWhere(
      'the suggestions for /33',
      (list) => /\/3303\s+Temperature/.test(list) && pathLines(list).every((line) => line.startsWith('/33')),
    );
    await screenshot(page!, 'path-autocomplete.png');
    await completions.locator('.lwm2m-path-completion', { hasText: 'Temperature' }).click();
    assert.equal(await field.inputValue(), '/3303');

    // A registered device with an instance 7 of 3303: the suggestions come from its registration.
    await startDevice();
    await page!.locator('.lwm2m-db-device[data-endpoint="forms-dev"]').waitFor({ timeout: 15000 });
    await page!.locator('#node-input-endpoint').fill('forms-dev');
    // Typing on after the picked /3303 (Playwright's own typing would put the caret first).
    await field.focus();
    await page!.keyboard.press('End');
    await page!.keyboard.type('/');
    const underObject = await listWhere('the device instances', (list) => list.includes('/3303/7'));
    assert.doesNotMatch(underObject, /\/3303\/0\b/);
    assert.match(underObject, /\/3303\/7\/5700\s+Sensor Value/);
    await screenshot(page!, 'path-autocomplete-device.png');
    await page!.keyboard.press('Escape');
    await cancelDialog();

    // An execute node offers only what can be executed.
    await page!.evaluate(() => RED.editor.edit(RED.nodes.node('exec')));
    const execPath = page!.locator('#node-input-path');
    await execPath.waitFor();
    await execPath.fill('');
    await execPath.click();
    await execPath.pressSequentially('/3/0/');
    const executable = await listWhere('the executable resources of /3/0', (list) => list.includes('/3/0/4'));
    assert.match(executable, /\/3\/0\/4\s+Reboot/);
    assert.doesNotMatch(executable, /\/3\/0\/0\b/, 'Manufacturer (read-only) is not offered to execute');
    await page!.keyboard.press('Escape');
    await cancelDialog();
    assert.deepEqual(pageErrors, []);
  });

  it('shows what a read node got in its status on the workspace', async function () {
    await startDevice();
    // The status label is SVG text.
    const statusOf = async (id: string) =>
      (await page!.locator(`#${id} .red-ui-flow-node-status-label`).textContent()) ?? '';
    await page!.evaluate(
      () => new Promise((resolve, reject) => $.ajax({ url: 'inject/inj', method: 'POST' }).then(resolve, reject)),
    );
    await waitFor('the read answered', async () => (/^2\.05 · \d+ ms$/.test(await statusOf('rd7')) ? true : undefined));
    await waitFor('the failed read', async () => ((await statusOf('rdbad')) === '4.04 Not Found' ? true : undefined));
    // The listener node keeps the server's state.
    assert.match(await statusOf('reg'), /· 1 device$/);
    await screenshot(page!, 'operation-status.png');
    assert.deepEqual(pageErrors, []);
  });
});
