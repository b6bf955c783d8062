import { strict as assert } from 'node:assert';
import type { Page } from 'playwright-core';
import { Lwm2mClient } from '../../lib/client';
import { chromiumPresent, launchChromium, openEditor, screenshot, CHROMIUM } from './chromium';
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
    if (!chromiumPresent()) {
      console.log(`      (skipped: ${CHROMIUM} is absent; .ci/run installs Debian's chromium)`);
      this.skip();
    }
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
    await page!.locator('#node-dialog-cancel').click();
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
});
