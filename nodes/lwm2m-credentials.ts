import type { SecurityInfo, SecurityStore } from '../lib/server/security';
import {
  SecurityInfoError,
  clashMessage,
  parseSecurityFile,
  parseSecurityInfo,
  securityInfoToPlain,
} from '../lib/server/security';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { serverConfig } from './shared/operation-node';
import { namesFromMsg } from './shared/resolve';
import { Status } from './shared/status';
import { catalog, t } from './shared/i18n';
import type { Translate } from './shared/i18n';

type Action = 'add' | 'remove' | 'get' | 'list';
const ACTIONS: readonly Action[] = ['add', 'remove', 'get', 'list'];

interface CredentialsConfig extends NodeDef {
  server?: string;
  /** add | remove | get | list; blank = from msg.action. */
  action?: string;
  /** Output keys in hex (get/list): off by default, keys do not belong in debug output. */
  revealKeys?: boolean;
}

/** A flow mistake, told to a Catch node with the reason. */
class CredentialsInputError extends Error {
  override name = 'CredentialsInputError';
}

/**
 * Device credentials in the server's security store, managed from a flow: add (one entry, an array, or the
 * text of a JSON or CSV file), remove, get, list. A fleet's keys live in the store, not in node settings.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-credentials');
  function Lwm2mCredentialsNode(this: Node, config: CredentialsConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const serverNode = serverConfig(RED, node, config.server);
    if (!serverNode) return;
    const store = serverNode.server.securityStore;

    const run = async (action: Action, msg: NodeMessage): Promise<unknown> => {
      switch (action) {
        case 'add': {
          const infos = entriesOf(_, msg.payload);
          // Every entry is checked before any is stored: a bad line or a clash in a batch stores nothing.
          await checkClashes(store, infos);
          const added: string[] = [];
          const replaced: string[] = [];
          for (const info of infos) {
            const previous = await store.add(info);
            // Sessions made with the old credentials end: the device handshakes again with the new ones.
            if (previous) {
              replaced.push(info.endpoint);
              serverNode.server.revokeSessions(previous);
            }
            added.push(info.endpoint);
          }
          return { added, replaced };
        }
        case 'remove': {
          const removed: string[] = [];
          for (const endpoint of endpointsOf(msg)) {
            const info = await store.remove(endpoint);
            if (!info) continue;
            // A removed device loses its live session too, not only its next handshake.
            serverNode.server.revokeSessions(info);
            removed.push(endpoint);
          }
          return { removed };
        }
        case 'get': {
          const [endpoint] = endpointsOf(msg);
          const info = await store.getByEndpoint(endpoint);
          return info ? securityInfoToPlain(info, config.revealKeys === true) : null;
        }
        case 'list':
          return (await store.list()).map((info) => securityInfoToPlain(info, config.revealKeys === true));
      }
    };

    node.on('input', (msg, send, done) => {
      const action = actionOf(config.action, msg);
      Promise.resolve()
        .then(() => {
          if (!action) throw new CredentialsInputError(t('errors.action', { actions: ACTIONS.join(', ') }));
          return run(action, msg);
        })
        .then((payload) => {
          msg.payload = payload;
          node.status(
            Status.ok(
              action === 'list'
                ? _('lwm2m-credentials.status.devices', { count: (payload as unknown[]).length })
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
          done(err instanceof SecurityInfoError ? new CredentialsInputError(err.message) : err);
        });
    });
  }
  RED.nodes.registerType('lwm2m-credentials', Lwm2mCredentialsNode as unknown as (this: Node, def: NodeDef) => void);
};

function actionOf(configured: string | undefined, msg: NodeMessage): Action | undefined {
  const value = configured || (typeof msg.action === 'string' ? msg.action.toLowerCase() : undefined);
  return ACTIONS.find((action) => action === value);
}

/** A PSK identity or public key taken by another endpoint, in the store or earlier in the same batch. */
async function checkClashes(store: SecurityStore, infos: SecurityInfo[]): Promise<void> {
  const batch = new Map<string, string>();
  for (const info of infos) {
    if (info.mode === 'x509') continue;
    const key = info.mode === 'psk' ? `psk:${info.identity}` : `rpk:${info.publicKey.toString('hex')}`;
    const holder =
      batch.get(key) ??
      (info.mode === 'psk' ? await store.getByPskIdentity(info.identity) : await store.getByPublicKey(info.publicKey))
        ?.endpoint;
    if (holder !== undefined && holder !== info.endpoint)
      throw new CredentialsInputError(clashMessage(info, { endpoint: holder, mode: 'x509' }));
    batch.set(key, info.endpoint);
  }
}

/** msg.payload as entries: an object, an array of them, or JSON/CSV text (a file read by a file-in node). */
function entriesOf(_: Translate, payload: unknown): SecurityInfo[] {
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) return parseSecurityFile(payload.toString());
  if (Array.isArray(payload))
    return payload.map((entry, i) => {
      try {
        return parseSecurityInfo(entry);
      } catch (err) {
        throw new CredentialsInputError(t('errors.entry', { index: i + 1, error: (err as Error).message }));
      }
    });
  if (payload !== null && typeof payload === 'object') return [parseSecurityInfo(payload)];
  throw new CredentialsInputError(_('lwm2m-credentials.errors.payload'));
}

function endpointsOf(msg: NodeMessage): string[] {
  const names = namesFromMsg(msg);
  if (!names) throw new CredentialsInputError(t('errors.endpointName'));
  return names;
}
