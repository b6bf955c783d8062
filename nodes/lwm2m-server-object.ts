import { Lwm2mRequestError } from '../lib/server/errors';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { catalog } from './shared/i18n';
import type { Translate } from './shared/i18n';

interface ServerObjectConfig extends OperationConfig {
  action?: string;
  shortServerId?: string;
  pmin?: string;
  pmax?: string;
  disableTimeout?: string;
}

const ACTIONS = ['update', 'disable', 'periods', 'mute-send', 'unmute-send', 'bootstrap'] as const;
type Action = (typeof ACTIONS)[number];

function optionalNumber(_: Translate, ...candidates: unknown[]): number | undefined {
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === null || candidate === '') continue;
    const value = Number(candidate);
    if (!Number.isFinite(value))
      throw new Lwm2mRequestError(
        _('lwm2m-server-object.errors.notNumber', { value: String(candidate) }),
        'bad-request',
      );
    return value;
  }
  return undefined;
}

/**
 * Acts on this server's account on the device (its Server object instance, /1/x): Registration Update
 * Trigger, Disable, default notification periods, Mute Send, Bootstrap-Request Trigger.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-server-object');
  function Lwm2mServerObjectNode(this: Node, config: ServerObjectConfig): void {
    RED.nodes.createNode(this, config);
    operationNode(RED, this, { ...config, path: '/1' }, async (server, target, msg) => {
      const action = (config.action || (typeof msg.action === 'string' ? msg.action : '')) as Action;
      if (!ACTIONS.includes(action)) {
        throw new Lwm2mRequestError(
          _('lwm2m-server-object.errors.action', { action, actions: ACTIONS.join(', ') }),
          'bad-request',
          target.endpoint,
        );
      }
      const shortServerId = optionalNumber(_, config.shortServerId, msg.shortServerId);
      const account = await server.serverAccountPath(target.endpoint, shortServerId);
      const details = { endpoint: target.endpoint, path: account, action };
      if (action === 'update')
        return {
          details: {
            ...details,
            ...(await server.triggerRegistrationUpdate(target.endpoint, shortServerId)),
            path: account,
          },
        };
      if (action === 'bootstrap')
        return {
          details: { ...details, ...(await server.triggerBootstrap(target.endpoint, shortServerId)), path: account },
        };
      if (action === 'disable') {
        const timeoutSeconds = optionalNumber(_, config.disableTimeout, msg.disableTimeout);
        const result = await server.disable(target.endpoint, { shortServerId, timeoutSeconds });
        return { details: { ...details, ...result, path: account } };
      }
      if (action === 'periods') {
        const periods = {
          pmin: optionalNumber(_, config.pmin, msg.pmin),
          pmax: optionalNumber(_, config.pmax, msg.pmax),
        };
        const results = await server.setDefaultPeriods(target.endpoint, periods, shortServerId);
        return { details: { ...details, code: results[results.length - 1].code, periods } };
      }
      const result = await server.setMuteSend(target.endpoint, action === 'mute-send', shortServerId);
      return { details: { ...details, ...result, path: account } };
    });
  }
  RED.nodes.registerType('lwm2m-server-object', Lwm2mServerObjectNode as unknown as (this: Node, def: NodeDef) => void);
};
