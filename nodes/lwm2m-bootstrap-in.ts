import type {
  BootstrapFailedEvent,
  BootstrapFinishedEvent,
  BootstrapStartedEvent,
} from '../lib/bootstrap/bootstrap-server';
import { bootstrapConfig } from './shared/bootstrap-config';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { endpointFilter } from './shared/resolve';

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
    const configNode = bootstrapConfig(RED, node, config.bootstrap);
    if (!configNode) return;
    const matches = endpointFilter(node, config.endpoint);
    if (!matches) return;
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
