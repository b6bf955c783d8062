import { BootstrapConfigError } from '../lib/bootstrap/config';
import { bootstrapConfigToPlain, parseBootstrapBatch } from '../lib/bootstrap/batch';
import { ProvisioningConfigStore } from '../lib/bootstrap/provisioning';
import { bootstrapConfig } from './shared/bootstrap-config';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { namesFromMsg } from './shared/resolve';
import { Status } from './shared/status';
import { catalog, t } from './shared/i18n';

type Action = 'add' | 'remove' | 'get' | 'list';
const ACTIONS: readonly Action[] = ['add', 'remove', 'get', 'list'];

interface BootstrapConfigNodeDef extends NodeDef {
  bootstrap?: string;
  action?: string;
  revealKeys?: boolean;
}

/** A flow mistake, told to a Catch node with the reason. */
class BootstrapInputError extends Error {
  override name = 'BootstrapInputError';
}

/**
 * Bootstrap configurations from a flow: add (entries, or the CSV of a manufacturing batch), remove, get,
 * list. PSK accounts provisioned for the DM server named in the bootstrap node reach its security store too.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-bootstrap-config');
  function Lwm2mBootstrapConfigNode(this: Node, config: BootstrapConfigNodeDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const configNode = bootstrapConfig(RED, node, config.bootstrap);
    if (!configNode) return;
    const store = configNode.bootstrap.configStore;
    const reveal = config.revealKeys === true;

    const run = async (action: Action, msg: NodeMessage): Promise<unknown> => {
      switch (action) {
        case 'add': {
          // The whole batch is checked first: one bad line stores nothing.
          const entries = parseBootstrapBatch(msg.payload);
          if (store instanceof ProvisioningConfigStore) await store.checkBatch(entries);
          const existing = new Set((await store.list()).map((entry) => entry.key));
          for (const entry of entries) await store.set(entry.key, entry.plain);
          return {
            added: entries.map((entry) => entry.key),
            replaced: entries.filter((entry) => existing.has(entry.key)).map((entry) => entry.key),
          };
        }
        case 'remove': {
          const removed: string[] = [];
          for (const key of keysOf(msg)) if (await store.remove(key)) removed.push(key);
          return { removed };
        }
        case 'get': {
          const [endpoint] = keysOf(msg);
          const found = (await store.list()).find((entry) => entry.key === endpoint);
          return found ? bootstrapConfigToPlain(found.key, found.config, reveal) : null;
        }
        case 'list':
          return (await store.list()).map((entry) => bootstrapConfigToPlain(entry.key, entry.config, reveal));
      }
    };

    node.on('input', (msg, send, done) => {
      const value = config.action || (typeof msg.action === 'string' ? msg.action.toLowerCase() : undefined);
      const action = ACTIONS.find((candidate) => candidate === value);
      Promise.resolve()
        .then(() => {
          if (!action) throw new BootstrapInputError(t('errors.action', { actions: ACTIONS.join(', ') }));
          return run(action, msg);
        })
        .then((payload) => {
          msg.payload = payload;
          node.status(
            Status.ok(
              action === 'list'
                ? _('lwm2m-bootstrap-config.status.configs', { count: (payload as unknown[]).length })
                : action!,
            ),
          );
          send(msg);
          done();
        })
        .catch((err: Error) => {
          node.status(Status.error(action ?? 'error'));
          // The msg goes on to Catch and debug nodes: not with the keys it carried.
          if (action === 'add') delete msg.payload;
          done(err instanceof BootstrapConfigError ? new BootstrapInputError(err.message) : err);
        });
    });
  }
  RED.nodes.registerType(
    'lwm2m-bootstrap-config',
    Lwm2mBootstrapConfigNode as unknown as (this: Node, def: NodeDef) => void,
  );
};

function keysOf(msg: NodeMessage): string[] {
  const names = namesFromMsg(msg);
  if (!names) throw new BootstrapInputError(t('errors.endpointPattern'));
  return names;
}
