import type { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type { Node } from './node-red';

/** What palette nodes see of the lwm2m-bootstrap config node. */
export interface Lwm2mBootstrapConfigNode extends Node {
  bootstrap: BootstrapServer;
  /** A palette node starts using the bootstrap server (the first one starts its endpoint). */
  register(user: Node): void;
  deregister(user: Node): Promise<void>;
  /** Resolves when the endpoint is listening (rejects with the reason it could not start). */
  ready(): Promise<void>;
}
