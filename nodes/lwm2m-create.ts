import { Lwm2mRequestError } from '../lib/server/errors';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { evaluateTypedValue, formatOption, timeoutOption } from './shared/options';
import { catalog } from './shared/i18n';
import type { Translate } from './shared/i18n';

interface CreateConfig extends OperationConfig {
  instanceId?: string | number;
  value?: string;
  valueType?: string;
  format?: string;
  timeout?: string | number;
}

/** The instance id to ask for: the node's wins, then msg.instanceId; blank = the device picks one. */
function instanceIdOption(_: Translate, configured: unknown, fromMsg: unknown, endpoint: string): number | undefined {
  for (const candidate of [configured, fromMsg]) {
    if (candidate === undefined || candidate === null || String(candidate).trim() === '') continue;
    const id = Number(String(candidate).trim());
    // 65535 is reserved (LwM2M Core §7.2: MAX_ID).
    if (!Number.isInteger(id) || id < 0 || id > 65534) {
      throw new Lwm2mRequestError(
        _('lwm2m-create.errors.instanceId', { value: JSON.stringify(candidate) }),
        'bad-request',
        endpoint,
      );
    }
    return id;
  }
  return undefined;
}

/**
 * Create: a new object instance from the node's Value (msg.payload by default, resources keyed by id
 * or name). msg.lwm2m.instancePath and msg.topic name the instance the device created.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-create');
  function Lwm2mCreateNode(this: Node, config: CreateConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const valueOf = (msg: NodeMessage) => evaluateTypedValue(RED, node, config.value, config.valueType, msg);
    operationNode(RED, node, config, async (server, target, msg) => {
      const instanceId = instanceIdOption(_, config.instanceId, msg.instanceId, target.endpoint);
      const value = await valueOf(msg);
      if (value === undefined) {
        throw new Lwm2mRequestError(_('lwm2m-create.errors.undefined'), 'bad-request');
      }
      const result = await server.create(target.endpoint, target.path, value, {
        instanceId,
        format: formatOption(config.format, msg.format),
        timeoutMs: timeoutOption(config.timeout),
      });
      // msg.topic and msg.lwm2m.path name the new instance, so a read or delete node can be wired after.
      return {
        details: {
          ...result,
          objectPath: result.path,
          path: result.instancePath ?? result.path,
        },
      };
    });
  }
  RED.nodes.registerType('lwm2m-create', Lwm2mCreateNode as unknown as (this: Node, def: NodeDef) => void);
};
