import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import { formatOption, timeoutOption } from './shared/options';
import type { OperationConfig } from './shared/operation-node';

interface ReadConfig extends OperationConfig {
  format?: string;
  timeout?: string | number;
}

/**
 * Read: msg in, the device's value out (a plain value for a resource, an object for an instance).
 * A comma-separated list of paths is one Read-Composite; msg.payload is then keyed by path.
 */
export = function (RED: NodeAPI): void {
  function Lwm2mReadNode(this: Node, config: ReadConfig): void {
    RED.nodes.createNode(this, config);
    operationNode(RED, this, config, async (server, target, msg) => {
      const options = { format: formatOption(config.format, msg.format), timeoutMs: timeoutOption(config.timeout) };
      const paths = target.path.split(',').map((path) => path.trim());
      if (paths.length > 1) {
        // Several paths: one Read-Composite (LwM2M 1.1), values keyed by path.
        const { nodes: _nodes, values, ...details } = await server.readComposite(target.endpoint, paths, options);
        return { payload: values, details };
      }
      const { node: _node, value, ...details } = await server.read(target.endpoint, target.path, options);
      return { payload: value, details };
    });
  }
  RED.nodes.registerType('lwm2m-read', Lwm2mReadNode as unknown as (this: Node, def: NodeDef) => void);
};
