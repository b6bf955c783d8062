import type { SendReport, SentValue } from '../lib/server/send';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { serverConfig } from './shared/operation-node';
import { endpointFilter, topicOf } from './shared/resolve';
import { catalog } from './shared/i18n';

interface SendInConfig extends NodeDef {
  server?: string;
  endpoint?: string;
  path?: string;
  output?: 'send' | 'value';
}

/** A path filter: blank or `/` passes every path; `/3303` passes `/3303` and everything under it. */
function pathMatcher(prefix: string | undefined): (path: string) => boolean {
  const trimmed = (prefix ?? '').trim().replace(/\/+$/, '');
  if (trimmed === '') return () => true;
  const normalised = trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  return (path) => path === normalised || path.startsWith(normalised + '/');
}

function timeOf(value: SentValue, report: SendReport): Date {
  return value.time ?? report.receivedAt;
}

/** The latest value of each path: by the device's time, and among equal times the last one in the Send. */
function latestByPath(values: SentValue[], report: SendReport): Record<string, unknown> {
  const latest = new Map<string, SentValue>();
  for (const value of values) {
    const current = latest.get(value.path);
    if (!current || timeOf(value, report).getTime() >= timeOf(current, report).getTime()) latest.set(value.path, value);
  }
  return Object.fromEntries([...latest].map(([path, value]) => [path, value.value]));
}

/**
 * Send in: values devices push with the LwM2M 1.1 Send operation (POST /dp), filtered by endpoint
 * and path; one msg per Send, or one msg per value.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-send-in');
  function Lwm2mSendInNode(this: Node, config: SendInConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const serverNode = serverConfig(RED, node, config.server);
    if (!serverNode) return;
    const server = serverNode.server;
    const matchesEndpoint = endpointFilter(node, config.endpoint);
    if (!matchesEndpoint) return;
    const matchesPath = pathMatcher(config.path);
    const perValue = config.output === 'value';
    if (server.options.acceptSend === false) {
      node.warn(_('lwm2m-send-in.warnings.sendRefused'));
    }

    const onSend = (report: SendReport) => {
      if (!matchesEndpoint(report.endpoint)) return;
      const values = report.values.filter((value) => matchesPath(value.path));
      if (values.length === 0) return;
      const common = {
        event: 'send',
        endpoint: report.endpoint,
        registrationId: report.registrationId,
        contentFormat: report.contentFormat,
        receivedAt: report.receivedAt,
      };
      if (perValue) {
        for (const value of values) {
          node.send({
            topic: topicOf(report.endpoint, value.path),
            payload: value.value,
            lwm2m: { ...common, path: value.path, time: timeOf(value, report) },
          });
        }
        return;
      }
      const msg: NodeMessage = {
        topic: report.endpoint,
        payload: latestByPath(values, report),
        lwm2m: {
          ...common,
          time: report.receivedAt,
          values: values.map((value) => ({ path: value.path, value: value.value, time: timeOf(value, report) })),
        },
      };
      node.send(msg);
    };
    server.on('send', onSend);
    serverNode.register(node);

    node.on('close', (removed: boolean, done: () => void) => {
      server.off('send', onSend);
      serverNode.deregister(node, removed).then(done, done);
    });
  }
  RED.nodes.registerType('lwm2m-send-in', Lwm2mSendInNode as unknown as (this: Node, def: NodeDef) => void);
};
