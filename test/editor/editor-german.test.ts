import { strict as assert } from 'node:assert';
import type { Page } from 'playwright-core';
import { launchChromium, openEditor, screenshot, skipWithoutChromium } from './chromium';
import type { Chromium } from './chromium';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

/* eslint-disable @typescript-eslint/no-explicit-any -- page.evaluate bodies run in the editor, where RED is untyped */
declare const RED: any;
declare const $: any;

/**
 * The editor in German, as a German user gets it: Chromium with the browser language de-DE (Node-RED's editor takes
 * its language from the browser) and the runtime with `lang: 'de'`. Palette names, dialog labels, validation
 * messages, help and node status come from nodes/locales/de.
 */
describe('the editor in German (headless Chromium, browser language de-DE)', function () {
  this.timeout(90000);
  let red: NodeRedProcess | undefined;
  let browser: Chromium | undefined;
  let page: Page | undefined;
  const pageErrors: string[] = [];

  before(async function () {
    skipWithoutChromium(this);
    red = await startNodeRed(
      [
        { id: 'f1', type: 'tab', label: 'LwM2M' },
        { id: 'srv', type: 'lwm2m-server', name: 'de server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
        { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 160, y: 80, wires: [[]] },
        { id: 'rd', type: 'lwm2m-read', z: 'f1', server: 'srv', path: '/3303/x', x: 160, y: 140, wires: [[]] },
        { id: 'fw', type: 'lwm2m-firmware-update', z: 'f1', server: 'srv', x: 160, y: 200, wires: [[], []] },
      ],
      30000,
      { lang: 'de' },
    );
    browser = await launchChromium({ locale: 'de-DE' });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await openEditor(page, red, 'f1');
  });

  after(async function () {
    await browser?.close();
    await red?.stop();
  });

  it("shows the palette, a dialog, a validation message, the help and a node's status in German", async function () {
    const paletteLabel = (type: string) =>
      page!.locator(`.red-ui-palette-node[data-palette-type="${type}"] .red-ui-palette-label`).innerText();
    // German names where they are words that fit the palette (it breaks a label at spaces and hyphens)...
    assert.equal(await paletteLabel('lwm2m-firmware-update'), 'Firmware\nUpdate');
    assert.equal(await paletteLabel('lwm2m-server-object'), 'Serverkonto');
    assert.equal(await paletteLabel('lwm2m-device'), 'Gerät');
    // ...LwM2M's operations keep their names, as Node-RED's German palette keeps inject, switch, mqtt in.
    assert.equal(await paletteLabel('lwm2m-read'), 'read');
    assert.equal(await paletteLabel('lwm2m-register-in'), 'registration\nin');

    // The node's status on the workspace: the runtime's language.
    await waitFor('the German device count under registration in', async () =>
      /· 0 Geräte$/.test((await page!.locator('#reg .red-ui-flow-node-status-label').textContent()) ?? ''),
    );

    // Validation: the shared editor script's message, from the German catalog.
    const errors = await page!.evaluate(() => RED.nodes.node('rd').validationErrors);
    assert.deepEqual(errors, ['ein LwM2M-Pfad wie /3303/0/5700, oder mehrere durch Kommas getrennt']);

    // The read node's dialog: labels, placeholders and the content-format select.
    await page!.evaluate(() => RED.editor.edit(RED.nodes.node('rd')));
    await page!.locator('#node-input-path').waitFor();
    const dialog = await page!.evaluate(() => ({
      labels: ['server', 'endpoint', 'path', 'format', 'timeout', 'name'].map((field) =>
        $(`label[for="node-input-${field}"]`).text().trim(),
      ),
      endpointPlaceholder: $('#node-input-endpoint').attr('placeholder'),
      format: $('#node-input-format option:selected').text(),
    }));
    assert.deepEqual(dialog, {
      labels: ['Server', 'Endpoint', 'Pfad', 'Format', 'Zeitlimit', 'Name'],
      endpointPlaceholder: 'aus msg.endpoint oder msg.topic',
      format: 'automatisch (mit dem Gerät ausgehandelt)',
    });

    // Its help, in the help sidebar.
    await page!.evaluate(() => RED.sidebar.help.show('lwm2m-read'));
    const help = page!.locator('.red-ui-help', { hasText: 'Liest eine Ressource, eine Objektinstanz' });
    await help.first().waitFor();
    assert.match(await help.first().innerText(), /Eingangsdaten[\s\S]*Ausgangsdaten[\s\S]*Zeitlimit/);
    await screenshot(page!, 'editor-german.png');

    await page!.evaluate(() => RED.actions.invoke('core:cancel-edit-tray'));

    // The server dialog's tabs: labels from the shared catalog, through the shared editor script.
    await page!.evaluate(() => RED.editor.editConfig('', 'lwm2m-server', 'srv'));
    const tabs = page!.locator('#lwm2m-server-tabs .red-ui-tab');
    await tabs.first().waitFor();
    assert.deepEqual(await tabs.allInnerTexts(), [
      'Listener',
      'Sicherheit',
      'Speicher',
      'Zeitverhalten',
      'Modell',
      'Grenzen',
    ]);
    assert.equal((await page!.locator('#lwm2m-server-open-browser').innerText()).trim(), 'Geräte-Browser öffnen');
    await screenshot(page!, 'server-dialog-german.png');
    await page!.evaluate(() => RED.actions.invoke('core:cancel-edit-tray'));

    // The device browser plugin: its own catalog (nodes/plugins/locales/de).
    await page!.evaluate(() => RED.sidebar.show('lwm2m-device-browser'));
    const counts = page!.locator('.lwm2m-db-counts');
    await waitFor('the German counts of the device browser', async () =>
      /^0 Geräte · 0 gesichert$/.test(await counts.innerText()),
    );
    assert.equal(await page!.locator('.lwm2m-db-search').getAttribute('placeholder'), 'Endpoint/Adresse suchen');
    assert.equal(await page!.locator('.lwm2m-db-empty').innerText(), 'Kein Gerät registriert.');
    await screenshot(page!, 'device-browser-german.png');
    assert.deepEqual(pageErrors, []);
  });
});
