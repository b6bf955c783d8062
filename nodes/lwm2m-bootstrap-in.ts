import type {
  BootstrapFailedEvent,
  BootstrapFinishedEvent,
  BootstrapStartedEvent,
} from '../lib/bootstrap/bootstrap-server';
import type { Lwm2mBootstrapConfigNode } from './shared/bootstrap-config';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { endpointMatcher } from './shared/resolve';
import { Status } from './shared/status';

interface BootstrapInConfig extends NodeDef {
  bootstrap?: string;
  endpoint?: string;
}

const EVENTS = { bootstrapStarted: 'started', bootstrapFinished: 'finished', bootstrapFailed: 'failed' } as const;
type BootstrapEvent = BootstrapStartedEvent | BootstrapFinishedEvent | BootstrapFailedEvent;

/** Bootstrap events into the flow: a device asked, was provisioned, or failed (with the step and reason). */
export = function (RED: NodeAPI): void {
  function Lwm2mBootstrapInNode(this: Node, config: BootstrapInConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const configNode = config.bootstrap
      ? (RED.nodes.getNode(config.bootstrap) as Lwm2mBootstrapConfigNode | null)
      : null;
    if (!configNode || typeof configNode.register !== 'function') {
      node.status(Status.error('no bootstrap server'));
      node.error('no lwm2m-bootstrap configuration node selected');
      return;
    }
    let matches: (endpoint: string) => boolean;
    try {
      matches = endpointMatcher(config.endpoint);
    } catch (err) {
      node.status(Status.error('bad endpoint filter'));
      node.error(`invalid endpoint filter "${config.endpoint}": ${(err as Error).message}`);
      return;
    }
    const bootstrap = configNode.bootstrap;
    const listeners = (Object.keys(EVENTS) as Array<keyof typeof EVENTS>).map((event) => {
      const listener = (detail: BootstrapEvent) => {
        if (!matches(detail.endpoint)) return;
        const { peer, ...rest } = detail;
        node.send({
          topic: detail.endpoint,
          payload: { ...rest, address: peer.address, port: peer.port, secure: peer.secure },
          lwm2m: { event: EVENTS[event], endpoint: detail.endpoint },
        });
      };
      bootstrap.on(event, listener);
      return { event, listener };
    });
    configNode.register(node);
    node.on('close', (done: () => void) => {
      for (const { event, listener } of listeners) bootstrap.off(event, listener);
      configNode.deregister(node).then(done, done);
    });
  }
  RED.nodes.registerType('lwm2m-bootstrap-in', Lwm2mBootstrapInNode as unknown as (this: Node, def: NodeDef) => void);
};
