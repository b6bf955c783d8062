import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import { launchChromium, openEditor, screenshot, skipWithoutChromium } from './chromium';
import type { Chromium } from './chromium';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess } from './node-red-process';

/* eslint-disable @typescript-eslint/no-explicit-any -- page.evaluate bodies run in the editor, where RED is untyped */
declare const RED: any;
declare const $: any;

/**
 * End to end in headless Chromium: the Node-RED editor (with adminAuth, logged in through its login dialog)
 * shows a simulated device appearing in the LwM2M sidebar, reads /3/0, writes a value, sees a notification
 * arrive, and turns a resource dragged onto the workspace into a preconfigured read node.
 */
describe('device browser in the Node-RED editor (headless Chromium)', function () {
  this.timeout(90000);
  let red: NodeRedProcess | undefined;
  let device: Lwm2mClient | undefined;
  let browser: Chromium | undefined;

  before(async function () {
    skipWithoutChromium(this);
    red = await startNodeRed([
      { id: 'f1', type: 'tab', label: 'LwM2M' },
      { id: 'srv', type: 'lwm2m-server', name: 'e2e server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
      { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 140, y: 80, wires: [[]] },
    ]);
    browser = await launchChromium();
  });

  after(async function () {
    await browser?.close();
    await device?.stop({ timeoutMs: 500 }).catch(() => undefined);
    await red?.stop();
  });

  it('shows a device appear, reads /3/0, writes, sees a notification, and drags a resource onto the workspace', async function () {
    const page = browser!.context.pages()[0] ?? (await browser!.context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    try {
      await openEditor(page, red!, 'f1');
      await page.evaluate(() => RED.sidebar.show('lwm2m-device-browser'));
      const tab = page.locator('.lwm2m-db');
      await tab.locator('.lwm2m-db-servers option', { hasText: 'e2e server' }).waitFor({ state: 'attached' });

      // The server's port, from the same API the tab uses.
      const servers = (await page.evaluate(
        () => new Promise((resolve, reject) => $.getJSON('lwm2m/servers').then(resolve, reject)),
      )) as { servers: { id: string; port?: number }[] };
      const port = servers.servers.find((server) => server.id === 'srv')!.port;
      assert.ok(port, 'the LwM2M server listens');

      // A device registers while the list is on screen: it appears without a reload.
      device = new Lwm2mClient({
        endpointName: 'e2e-device',
        serverUri: `coap://127.0.0.1:${port}`,
        lwm2mVersion: '1.1',
        lifetime: 120,
        objects: [3303],
      });
      await device.start();
      const row = tab.locator('.lwm2m-db-device[data-endpoint="e2e-device"]');
      await row.waitFor({ timeout: 10000 });
      assert.match(await tab.locator('.lwm2m-db-counts').innerText(), /^1 device\b/);
      assert.match(await row.innerText(), /LwM2M 1\.1/);

      // Its object tree, then Read /3/0: each resource shows its value and the time it was read.
      await row.click();
      const instance = tab.locator('.lwm2m-db-row[data-path="/3/0"]');
      await instance.waitFor();
      await instance.locator('.lwm2m-db-read').click();
      const manufacturer = tab.locator('.lwm2m-db-resource[data-path="/3/0/0"]');
      await waitFor('the manufacturer read', async () =>
        (await manufacturer.locator('.lwm2m-db-value').innerText()) === String(device!.get('/3/0/0'))
          ? true
          : undefined,
      );
      assert.match(await manufacturer.locator('.lwm2m-db-label').innerText(), /Manufacturer \(0\)/);
      assert.notEqual((await manufacturer.locator('.lwm2m-db-read-at').innerText()).trim(), '');

      // Write: a typed editor for the resource (UTC Offset, a string).
      const utcOffset = tab.locator('.lwm2m-db-resource[data-path="/3/0/14"]');
      await utcOffset.locator('.lwm2m-db-write').click();
      await tab.locator('.lwm2m-db-form .lwm2m-db-input').fill('+05:30');
      await tab.locator('.lwm2m-db-form .lwm2m-db-write-send').click();
      await waitFor('the device to take the write', async () => device!.get('/3/0/14') === '+05:30' || undefined);
      await waitFor(
        'the written value read back',
        async () => (await utcOffset.locator('.lwm2m-db-value').innerText()) === '+05:30' || undefined,
      );

      // Observe: a notification updates the value live and lands in the device's log.
      const sensor = tab.locator('.lwm2m-db-resource[data-path="/3303/0/5700"]');
      await sensor.locator('.lwm2m-db-observe').click();
      await waitFor(
        'the observation',
        async () => /\bobserved\b/.test((await sensor.getAttribute('class')) ?? '') || undefined,
      );
      device.set('/3303/0/5700', 42.25);
      await waitFor(
        'the notification in the tree',
        async () => (await sensor.locator('.lwm2m-db-value').innerText()) === '42.25' || undefined,
      );
      await tab.locator('.lwm2m-db-log-notification', { hasText: '/3303/0/5700 = 42.25' }).waitFor();

      // Drag the resource onto the workspace: the editor imports the flow JSON it carries as text.
      const chart = page.locator('#red-ui-workspace-chart');
      const box = (await chart.boundingBox())!;
      const from = (await sensor.locator('.lwm2m-db-label').boundingBox())!;
      await page.mouse.move(from.x + 5, from.y + from.height / 2);
      await page.mouse.down();
      // Over the workspace the editor shows its drop target (on dragenter); the drop lands on it.
      await page.mouse.move(box.x + 300, box.y + 250, { steps: 10 });
      await page.mouse.move(box.x + 310, box.y + 260, { steps: 5 });
      await page.mouse.up();
      // A dropped import follows the mouse until a click places it.
      await page.mouse.move(box.x + 320, box.y + 270);
      await page.mouse.click(box.x + 320, box.y + 270);
      const created = (await waitFor('a read node from the drop', async () =>
        page.evaluate(() => {
          const found = RED.nodes.filterNodes({ type: 'lwm2m-read' });
          return found.length
            ? found.map((node: any) => ({ endpoint: node.endpoint, path: node.path, server: node.server, z: node.z }))
            : undefined;
        }),
      )) as { endpoint: string; path: string; server: string; z: string }[];
      assert.deepEqual(created, [{ endpoint: 'e2e-device', path: '/3303/0/5700', server: 'srv', z: 'f1' }]);

      assert.deepEqual(pageErrors, []);
    } finally {
      await screenshot(page, 'device-browser.png');
    }
  });
});
