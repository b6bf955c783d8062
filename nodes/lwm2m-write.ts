import { Lwm2mRequestError } from '../lib/server/errors';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { evaluateTypedValue, formatOption, timeoutOption } from './shared/options';

interface WriteConfig extends OperationConfig {
  value?: string;
  valueType?: string;
  mode?: 'replace' | 'update' | '';
  format?: string;
  timeout?: string | number;
}

/** Write: the value from the node's typedInput (msg.payload by default) to a resource or instance. */
export = function (RED: NodeAPI): void {
  function Lwm2mWriteNode(this: Node, config: WriteConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const valueOf = (msg: NodeMessage) => evaluateTypedValue(RED, node, config.value, config.valueType, msg);
    operationNode(RED, node, config, async (server, target, msg) => {
      const value = await valueOf(msg);
      if (value === undefined) throw new Lwm2mRequestError('nothing to write: the value is undefined', 'bad-request');
      const mode = config.mode || (msg.mode === 'update' ? 'update' : 'replace');
      const result = await server.write(target.endpoint, target.path, value, {
        mode,
        format: formatOption(config.format, msg.format),
        timeoutMs: timeoutOption(config.timeout),
      });
      return { details: { ...result, mode } };
    });
  }
  RED.nodes.registerType('lwm2m-write', Lwm2mWriteNode as unknown as (this: Node, def: NodeDef) => void);
};
