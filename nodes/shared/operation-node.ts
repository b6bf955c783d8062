import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerConfigNode } from './server-config';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './node-red';
import { OwnStatus } from './own-status';
import { failure, resolveTarget, topicOf } from './resolve';
import { Status } from './status';
import { t, useRuntimeCatalogs } from './i18n';

export interface OperationConfig extends NodeDef {
  server?: string;
  endpoint?: string;
  path?: string;
}

export interface OperationOutcome {
  payload?: unknown;
  /** Merged into msg.lwm2m (endpoint, path, code, contentFormat, rttMs...). */
  details: Record<string, unknown>;
}

/** The config node a palette node names, or undefined (the node then shows why). */
export function serverConfig(
  RED: NodeAPI,
  node: Node,
  configId: string | undefined,
): Lwm2mServerConfigNode | undefined {
  useRuntimeCatalogs(RED);
  const config = configId ? (RED.nodes.getNode(configId) as Lwm2mServerConfigNode | null) : null;
  if (!config || typeof config.register !== 'function') {
    node.status(Status.error(t('status.noServer')));
    node.error(t('errors.noServer'));
    return undefined;
  }
  return config;
}

/**
 * The life of a request node (read, write, execute, ...): register with the server config node, on
 * each input resolve endpoint and path (node config wins, msg fills blanks), run the operation,
 * answer with msg.payload / msg.topic / msg.lwm2m, or hand the error to done(err) for Catch nodes.
 * The node's status shows its last outcome (`2.05 · 12 ms`, `4.04 Not Found`); returned for what else it shows.
 */
export function operationNode(
  RED: NodeAPI,
  node: Node,
  config: OperationConfig,
  run: (server: Lwm2mServer, target: { endpoint: string; path: string }, msg: NodeMessage) => Promise<OperationOutcome>,
): OwnStatus | undefined {
  const serverNode = serverConfig(RED, node, config.server);
  if (!serverNode) return undefined;
  const status = new OwnStatus(node);
  serverNode.register(node, status.fromServer);

  node.on('input', (msg, send, done) => {
    let target: { endpoint: string; path: string } | undefined;
    let outcome: Promise<OperationOutcome>;
    // Straight to the operation when the server is listening (the usual case): no promise hops before it.
    try {
      target = resolveTarget({ endpoint: config.endpoint, path: config.path }, msg);
      const server = serverNode.server;
      const resolved = target;
      outcome = server?.running
        ? run(server, resolved, msg)
        : serverNode.ready().then(() => run(serverNode.server, resolved, msg));
    } catch (err) {
      outcome = Promise.reject(err);
    }
    const fail = (err: unknown) => {
      const error = failure(msg, err, target?.endpoint, target?.path);
      const code = `${(msg.lwm2m as { code?: string }).code ?? 'error'}`;
      status.show(() => Status.failed(code));
      done(error);
    };
    outcome.then((result) => {
      try {
        if (result.payload !== undefined) msg.payload = result.payload;
        msg.topic = topicOf(target!.endpoint, String(result.details.path ?? target!.path));
        msg.lwm2m = { ...result.details };
        const { code, rttMs } = result.details as { code?: unknown; rttMs?: unknown };
        status.show(() =>
          Status.answered(typeof code === 'string' ? code : undefined, typeof rttMs === 'number' ? rttMs : undefined),
        );
        send(msg);
        done();
      } catch (err) {
        fail(err);
      }
    }, fail);
  });

  node.on('close', (removed: boolean, done: () => void) => {
    status.close();
    serverNode.deregister(node, removed).then(done, done);
  });
  return status;
}
