import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Node } from './node-red';

/** What palette nodes see of the config node. */
export interface Lwm2mServerConfigNode extends Node {
  server: Lwm2mServer;
  /** A palette node starts using the server (the first one starts the endpoint). */
  register(user: Node): void;
  /** A palette node stops using it; `removed` = the node was deleted (its observations are cancelled). */
  deregister(user: Node, removed: boolean): Promise<void>;
  /** Resolves when the endpoint is listening (rejects with the reason it could not start). */
  ready(): Promise<void>;
}
