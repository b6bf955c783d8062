import type { Link } from '../lib/content/link-format';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { operationNode } from './shared/operation-node';
import type { OperationConfig } from './shared/operation-node';
import { timeoutOption } from './shared/options';

interface DiscoverConfig extends OperationConfig {
  timeout?: string | number;
  depth?: string;
}

/** One discovered path with its attributes, as msg.payload lists them. */
interface DiscoveredPath {
  path: string;
  attributes: Record<string, number | string | true>;
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** `</3/0/1>;pmin=10;ver=1.1` as `{ path: '/3/0/1', attributes: { pmin: 10, ver: '1.1' } }`. */
function discoveredPaths(links: readonly Link[]): DiscoveredPath[] {
  return links.map((link) => ({
    path: link.uri,
    // fromEntries: a parameter named __proto__ stays a plain property. An object version (ver=1.1) stays
    // text: 1.10 is not 1.1.
    attributes: Object.fromEntries(
      Object.entries(link.params).map(([name, value]) => [
        name,
        typeof value === 'string' && name !== 'ver' && NUMBER.test(value) ? Number(value) : value,
      ]),
    ),
  }));
}

/** Discover: the paths a device has under an object, instance or resource, with their attributes. */
export = function (RED: NodeAPI): void {
  function Lwm2mDiscoverNode(this: Node, config: DiscoverConfig): void {
    RED.nodes.createNode(this, config);
    operationNode(RED, this, config, async (server, target, msg) => {
      const depthSetting = config.depth !== undefined && config.depth !== '' ? config.depth : msg.depth;
      const depth = depthSetting === undefined || depthSetting === '' ? undefined : Number(depthSetting);
      const result = await server.discover(target.endpoint, target.path, {
        timeoutMs: timeoutOption(config.timeout),
        depth,
      });
      const { links, ...details } = result;
      return { payload: discoveredPaths(links), details };
    });
  }
  RED.nodes.registerType('lwm2m-discover', Lwm2mDiscoverNode as unknown as (this: Node, def: NodeDef) => void);
};
