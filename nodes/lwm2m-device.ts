import { Lwm2mClient } from '../lib/client/client';
import type { ClientLwm2mVersion } from '../lib/client/attributes';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { Status } from './shared/status';
import { catalog } from './shared/i18n';
import type { Translate } from './shared/i18n';

interface DeviceConfig extends NodeDef {
  endpoint?: string;
  serverUri?: string;
  lifetime?: string | number;
  version?: string;
  objects?: string;
  queueMode?: boolean;
  changeEvery?: string | number;
}

/** Object ids from "3303, 3304 3342": the device always has 0, 1 and 3 besides. */
function objectList(_: Translate, text: string | undefined): number[] {
  return (text ?? '')
    .split(/[\s,]+/)
    .filter((item) => item !== '')
    .map((item) => {
      const id = Number(item);
      if (!Number.isInteger(id) || id < 0 || id > 65535) throw new Error(_('lwm2m-device.errors.objectId', { item }));
      return id;
    })
    .filter((id) => id !== 0 && id !== 1 && id !== 3);
}

/** The PSK of a coaps:// device (identity as text, key in hex), or undefined when none is set. */
function pskOf(
  _: Translate,
  credentials: Record<string, string | undefined>,
): { identity: string; key: Buffer } | undefined {
  const identity = (credentials.pskIdentity ?? '').trim();
  const keyHex = (credentials.pskKey ?? '').trim().replace(/^0x/i, '');
  if (identity === '' && keyHex === '') return undefined;
  if (identity === '') throw new Error(_('lwm2m-device.errors.pskIdentity'));
  if (!/^(?:[0-9a-fA-F]{2}){4,64}$/.test(keyHex)) throw new Error(_('lwm2m-device.errors.pskKey'));
  return { identity, key: Buffer.from(keyHex, 'hex') };
}

/**
 * A simulated LwM2M device in a flow: it registers with a server, answers it, and notifies. msg in
 * sets a resource (msg.topic = path, msg.payload = value) or sends a command (msg.command); what the
 * server writes, executes, creates or deletes comes out as msgs.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-device');
  function Lwm2mDeviceNode(this: Node, config: DeviceConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const endpoint = (config.endpoint ?? '').trim() || `node-red-${node.id}`;
    let client: Lwm2mClient;
    try {
      const psk = pskOf(_, node.credentials ?? {});
      client = new Lwm2mClient({
        endpointName: endpoint,
        serverUri: (config.serverUri ?? '').trim() || 'coap://127.0.0.1:5683',
        lifetime: Number(config.lifetime) > 0 ? Number(config.lifetime) : 300,
        lwm2mVersion: (['1.0', '1.1', '1.2'].includes(config.version ?? '')
          ? config.version
          : '1.1') as ClientLwm2mVersion,
        queueMode: config.queueMode === true,
        objects: objectList(_, config.objects),
        simulateEveryMs: Number(config.changeEvery) > 0 ? Number(config.changeEvery) * 1000 : 0,
        ...(psk ? { psk } : {}),
      });
    } catch (err) {
      node.status(Status.error(_('lwm2m-device.status.badSettings')));
      node.error(_('lwm2m-device.errors.settings', { error: (err as Error).message }));
      return;
    }

    const out = (event: string, path: string | undefined, payload: unknown) =>
      node.send({ topic: path ? `${endpoint}${path}` : endpoint, payload, lwm2m: { event, endpoint, path } });
    client.on('registered', () => {
      node.status(Status.ok(_('lwm2m-device.status.registered')));
      out('registered', undefined, client.endpointName);
    });
    client.on('updated', () => node.status(Status.ok(_('lwm2m-device.status.registered'))));
    client.on('deregistered', () => {
      node.status(Status.stopped);
      out('deregistered', undefined, client.endpointName);
    });
    client.on('registrationFailed', (err) => {
      node.status(Status.error(_('lwm2m-device.status.registrationFailed')));
      node.warn(_('lwm2m-device.errors.device', { endpoint, error: err.message }));
    });
    client.on('write', (event) => out('write', event.path, event.value));
    client.on('execute', (event) => out('execute', event.path, event.args));
    client.on('create', (event) => out('create', event.path, undefined));
    client.on('delete', (event) => out('delete', event.path, undefined));
    client.on('error', (err) => node.warn(_('lwm2m-device.errors.device', { endpoint, error: err.message })));

    node.status(Status.waiting(_('lwm2m-device.status.registering')));
    client.start().catch((err: Error) => {
      node.status(Status.error(_('lwm2m-device.status.cannotStart')));
      node.error(_('lwm2m-device.errors.device', { endpoint, error: err.message }));
    });

    node.on('input', (msg: NodeMessage, _send, done) => {
      Promise.resolve()
        .then(async () => {
          const command = typeof msg.command === 'string' ? msg.command : undefined;
          if (command === 'update') return client.update();
          if (command === 'send') {
            const paths = Array.isArray(msg.paths) ? msg.paths.map(String) : [String(msg.topic ?? '')];
            await client.send(paths);
            return;
          }
          if (command === 'reboot') return client.reboot();
          if (command !== undefined) throw new Error(_('lwm2m-device.errors.command', { command }));
          const path = typeof msg.topic === 'string' ? msg.topic.trim() : '';
          if (!path.startsWith('/')) throw new Error(_('lwm2m-device.errors.topic'));
          client.set(path, msg.payload);
        })
        .then(() => done())
        .catch((err: Error) => done(err));
    });

    node.on('close', (done: () => void) => {
      // The device leaves the server cleanly either way; a redeploy registers it again.
      client.stop({ deregister: true, timeoutMs: 2000 }).then(done, done);
    });
  }
  RED.nodes.registerType('lwm2m-device', Lwm2mDeviceNode as unknown as (this: Node, def: NodeDef) => void, {
    credentials: { pskIdentity: { type: 'text' }, pskKey: { type: 'password' } },
  });
};
