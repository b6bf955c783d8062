import type { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type { Node, NodeAPI } from './node-red';
import { Status } from './status';
import { t, useRuntimeCatalogs } from './i18n';

/** What palette nodes see of the lwm2m-bootstrap config node. */
export interface Lwm2mBootstrapConfigNode extends Node {
  bootstrap: BootstrapServer;
  /** A palette node starts using the bootstrap server (the first one starts its endpoint). */
  register(user: Node): void;
  deregister(user: Node): Promise<void>;
  /** Resolves when the endpoint is listening (rejects with the reason it could not start). */
  ready(): Promise<void>;
}

/** The lwm2m-bootstrap config node a palette node names, or undefined (the node then shows why). */
export function bootstrapConfig(
  RED: NodeAPI,
  node: Node,
  configId: string | undefined,
): Lwm2mBootstrapConfigNode | undefined {
  useRuntimeCatalogs(RED);
  const config = configId ? (RED.nodes.getNode(configId) as Lwm2mBootstrapConfigNode | null) : null;
  if (!config || typeof config.register !== 'function') {
    node.status(Status.error(t('status.noBootstrapServer')));
    node.error(t('errors.noBootstrapServer'));
    return undefined;
  }
  return config;
}
