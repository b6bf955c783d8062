import { installDeviceBrowser } from '../shared/admin-api';
import type { DeviceBrowserRED } from '../shared/admin-api';

/**
 * The device browser as a Node-RED plugin: the editor half is lwm2m-device-browser.html (the "LwM2M"
 * sidebar tab); this runtime half mounts the admin API once, when Node-RED loads the module.
 */
export = function (
  RED: DeviceBrowserRED & { plugins: { registerPlugin(id: string, definition: object): void } },
): void {
  RED.plugins.registerPlugin('lwm2m-device-browser', { type: 'lwm2m-device-browser' });
  installDeviceBrowser(RED);
};
