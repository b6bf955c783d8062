import { Lwm2mRequestError } from '../lib/server/errors';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { evaluateTypedValue, formatOption, timeoutOption, writeLimitOption } from './shared/options';
import { catalog } from './shared/i18n';

interface WriteConfig extends OperationConfig {
  value?: string;
  valueType?: string;
  mode?: 'replace' | 'update' | 'composite' | '';
  format?: string;
  timeout?: string | number;
  /** This node's write size limit, KiB (blank: the server node's; 0: none). */
  maxSize?: string | number;
}

/** Write: the value from the node's typedInput (msg.payload by default) to a resource or instance. */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-write');
  function Lwm2mWriteNode(this: Node, config: WriteConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const valueOf = (msg: NodeMessage) => evaluateTypedValue(RED, node, config.value, config.valueType, msg);
    // Composite: the value is an object keyed by path, so the node needs no path of its own.
    const composite = config.mode === 'composite';
    operationNode(
      RED,
      node,
      { ...config, path: composite ? config.path || '/' : config.path },
      async (server, target, msg) => {
        const value = await valueOf(msg);
        if (value === undefined) throw new Lwm2mRequestError(_('lwm2m-write.errors.undefined'), 'bad-request');
        const options = {
          format: formatOption(config.format, msg.format),
          timeoutMs: timeoutOption(config.timeout),
          maxWriteBytes: writeLimitOption(config.maxSize, _('lwm2m-write.label.maxSize')),
        };
        if (composite || msg.mode === 'composite') {
          const result = await server.writeComposite(target.endpoint, value as Record<string, unknown>, options);
          return { details: { ...result, mode: 'composite' } };
        }
        const mode = config.mode === 'update' || (!config.mode && msg.mode === 'update') ? 'update' : 'replace';
        const result = await server.write(target.endpoint, target.path, value, { ...options, mode });
        return { details: { ...result, mode } };
      },
    );
  }
  RED.nodes.registerType('lwm2m-write', Lwm2mWriteNode as unknown as (this: Node, def: NodeDef) => void);
};
