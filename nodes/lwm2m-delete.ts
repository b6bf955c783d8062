import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { timeoutOption } from './shared/options';

interface DeleteConfig extends OperationConfig {
  timeout?: string | number;
}

/** Delete: removes an object instance (`/3303/1`) from a device. */
export = function (RED: NodeAPI): void {
  function Lwm2mDeleteNode(this: Node, config: DeleteConfig): void {
    RED.nodes.createNode(this, config);
    operationNode(RED, this, config, async (server, target) => {
      const result = await server.delete(target.endpoint, target.path, {
        timeoutMs: timeoutOption(config.timeout),
      });
      return { details: { ...result } };
    });
  }
  RED.nodes.registerType('lwm2m-delete', Lwm2mDeleteNode as unknown as (this: Node, def: NodeDef) => void);
};
