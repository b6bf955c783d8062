import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Node, NodeStatus } from './node-red';

/** What palette nodes see of the config node. */
export interface Lwm2mServerConfigNode extends Node {
  server: Lwm2mServer;
  /**
   * A palette node starts using the server (the first one starts the endpoint). The server's status (ports, device
   * count, problems) goes to `showServerStatus`, by default the node's own status line.
   */
  register(user: Node, showServerStatus?: (status: NodeStatus) => void): void;
  /** A palette node stops using it; `removed` = the node was deleted (its observations are cancelled). */
  deregister(user: Node, removed: boolean): Promise<void>;
  /** Resolves when the endpoint is listening (rejects with the reason it could not start). */
  ready(): Promise<void>;
}
