import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { evaluateTypedValue, timeoutOption } from './shared/options';

interface ExecuteConfig extends OperationConfig {
  args?: string;
  argsType?: string;
  timeout?: string | number;
}

/** Execute: runs an executable resource (reboot, open valve...) with optional arguments. */
export = function (RED: NodeAPI): void {
  function Lwm2mExecuteNode(this: Node, config: ExecuteConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const argsOf = (msg: NodeMessage) =>
      config.argsType === 'none' || !config.argsType
        ? Promise.resolve(undefined)
        : evaluateTypedValue(RED, node, config.args, config.argsType, msg, 'arguments');
    operationNode(RED, node, config, async (server, target, msg) => {
      const args = await argsOf(msg);
      const result = await server.execute(target.endpoint, target.path, args, {
        timeoutMs: timeoutOption(config.timeout),
      });
      return { details: { ...result } };
    });
  }
  RED.nodes.registerType('lwm2m-execute', Lwm2mExecuteNode as unknown as (this: Node, def: NodeDef) => void);
};
