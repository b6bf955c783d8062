import type { Registration } from '../lib/server/registration';
import type { Node, NodeAPI, NodeDef } from './shared/node-red';
import { serverConfig } from './shared/operation-node';
import { registrationPayload } from './shared/registration-payload';
import { endpointFilter } from './shared/resolve';

interface RegisterInConfig extends NodeDef {
  server?: string;
  endpoint?: string;
  registered?: boolean;
  updated?: boolean;
  deregistered?: boolean;
  expired?: boolean;
  awake?: boolean;
  sleeping?: boolean;
  /** The 'moved' event ('moved' itself is a property name the editor keeps for itself). */
  movedEvent?: boolean;
  /** How flows saved before the rename said it. */
  moved?: boolean;
}

type RegistrationEvent = 'registered' | 'updated' | 'deregistered' | 'expired' | 'awake' | 'sleeping' | 'moved';
const EVENTS: RegistrationEvent[] = ['registered', 'updated', 'deregistered', 'expired', 'awake', 'sleeping', 'moved'];

/**
 * Registration events of the devices into the flow: one msg per event, msg.topic = endpoint. Queue-mode
 * devices also give awake / sleeping events; a DTLS device whose session followed it to a new address, moved.
 */
export = function (RED: NodeAPI): void {
  function Lwm2mRegisterInNode(this: Node, config: RegisterInConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const serverNode = serverConfig(RED, node, config.server);
    if (!serverNode) return;
    const server = serverNode.server;
    const matches = endpointFilter(node, config.endpoint);
    if (!matches) return;
    // Every event is on unless the node says otherwise (a node from an older flow has no flags).
    const wanted = EVENTS.filter((event) =>
      event === 'moved' ? config.movedEvent !== false && config.moved !== false : config[event] !== false,
    );
    const listeners = wanted.map((event) => {
      const listener = (registration: Registration) => {
        if (!matches(registration.endpoint)) return;
        // Queue-mode devices: whether the device listens now ('awake') or requests wait for it ('sleeping').
        const queue = server.queueStatus(registration);
        node.send({
          topic: registration.endpoint,
          payload: { ...registrationPayload(registration), ...(queue ? { queue } : {}) },
          lwm2m: { event, endpoint: registration.endpoint, registrationId: registration.id },
        });
      };
      server.on(event, listener);
      return { event, listener };
    });
    serverNode.register(node);

    node.on('close', (removed: boolean, done: () => void) => {
      for (const { event, listener } of listeners) server.off(event, listener);
      serverNode.deregister(node, removed).then(done, done);
    });
  }
  RED.nodes.registerType('lwm2m-register-in', Lwm2mRegisterInNode as unknown as (this: Node, def: NodeDef) => void);
};
