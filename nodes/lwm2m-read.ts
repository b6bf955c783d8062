import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import { formatOption, timeoutOption } from './shared/options';
import type { OperationConfig } from './shared/operation-node';

interface ReadConfig extends OperationConfig {
  format?: string;
  timeout?: string | number;
}

/** Read: msg in, the device's value out (a plain value for a resource, an object for an instance). */
export = function (RED: NodeAPI): void {
  function Lwm2mReadNode(this: Node, config: ReadConfig): void {
    RED.nodes.createNode(this, config);
    operationNode(RED, this, config, async (server, target, msg) => {
      const result = await server.read(target.endpoint, target.path, {
        format: formatOption(config.format, msg.format),
        timeoutMs: timeoutOption(config.timeout),
      });
      const { node: _node, value, ...details } = result;
      return { payload: value, details };
    });
  }
  RED.nodes.registerType('lwm2m-read', Lwm2mReadNode as unknown as (this: Node, def: NodeDef) => void);
};
