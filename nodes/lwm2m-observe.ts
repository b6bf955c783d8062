import { normaliseAttributes } from '../lib/server/attributes';
import { Lwm2mRequestError } from '../lib/server/errors';
import type { NotificationAttributes } from '../lib/server/attributes';
import type { Notification, ObservationEndCause } from '../lib/server/observation-service';
import type { Registration } from '../lib/server/registration';
import type { StoredObservation } from '../lib/server/stores';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { serverConfig } from './shared/operation-node';
import { formatOption } from './shared/options';
import { OwnStatus } from './shared/own-status';
import { endpointMatcher, failure, isPattern, resolveTarget, topicOf } from './shared/resolve';
import { Status } from './shared/status';
import { catalog, t } from './shared/i18n';

interface ObserveConfig extends NodeDef {
  server?: string;
  endpoint?: string;
  path?: string;
  startOn?: 'deploy' | 'input';
  format?: string;
  pmin?: string;
  pmax?: string;
  gt?: string;
  lt?: string;
  st?: string;
  epmin?: string;
  epmax?: string;
}

/**
 * Observe: one path on one device, or on every device whose endpoint matches a pattern (as they
 * register). One msg per notification. The observation outlives a redeploy; it is cancelled by
 * msg.cancel or when the node is deleted.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-observe');
  function Lwm2mObserveNode(this: Node, config: ObserveConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const serverNode = serverConfig(RED, node, config.server);
    if (!serverNode) return;
    const server = serverNode.server;
    const owner = node.id;
    const endpointSetting = (config.endpoint ?? '').trim();
    const patternMode = endpointSetting !== '' && isPattern(endpointSetting);
    let configuredAttributes: NotificationAttributes;
    try {
      configuredAttributes = normaliseAttributes({
        pmin: config.pmin,
        pmax: config.pmax,
        gt: config.gt,
        lt: config.lt,
        st: config.st,
        epmin: config.epmin,
        epmax: config.epmax,
      });
    } catch (err) {
      node.error((err as Error).message);
      configuredAttributes = {};
    }
    /** Targets this node watches by pattern: re-armed when a matching device registers. */
    const patterns: { matches: (endpoint: string) => boolean; path: string; attributes: NotificationAttributes }[] = [];
    let active = 0;
    /** When the last notification for this node came: shown beside the count. */
    let lastNotificationAt: Date | undefined;
    const status = new OwnStatus(node);

    // Counting walks every observation: at most once a second (a pattern may start thousands at once).
    let statusTimer: NodeJS.Timeout | undefined;
    const showActive = () => {
      if (statusTimer) return;
      statusTimer = setTimeout(() => {
        statusTimer = undefined;
        server
          .listObservations()
          .then((observations) => {
            active = observations.filter((observation) => observation.owners.includes(owner)).length;
            status.show(Status.observing(active, lastNotificationAt));
          })
          .catch(() => undefined);
      }, 1000);
    };

    const startObservation = async (
      endpoint: string,
      path: string,
      attributes: NotificationAttributes,
      msg?: NodeMessage,
    ) => {
      await serverNode.ready();
      const paths = path.split(',').map((item) => item.trim());
      if (paths.length > 1) {
        // Observe-Composite (LwM2M 1.1): one notification carries every path; attributes go per path.
        if (Object.keys(attributes).length > 0) node.warn(_('lwm2m-observe.warnings.compositeAttributes'));
        const result = await server.observeComposite(endpoint, paths, {
          owner,
          format: formatOption(config.format, msg?.format),
        });
        node.send({
          ...(msg ?? {}),
          topic: topicOf(endpoint, result.path),
          payload: result.values,
          lwm2m: {
            event: 'observe',
            endpoint,
            path: result.path,
            code: result.code,
            contentFormat: result.contentFormat,
            rttMs: result.rttMs,
            observationId: result.observationId,
          },
        });
        showActive();
        return;
      }
      const result = await server.observe(endpoint, path, {
        owner,
        format: formatOption(config.format, msg?.format),
        attributes,
      });
      if (result.attributesReplaced) {
        node.warn(
          t('warnings.attributesReplaced', {
            target: `${endpoint}${path}`,
            attributes: Object.entries(attributes)
              .map(([k, v]) => `${k}=${v}`)
              .join('&'),
            replaced: result.attributesReplaced.attributes.join('&'),
            owner: result.attributesReplaced.owner,
          }),
        );
      }
      if (result.attributesNotApplied) {
        node.warn(_('lwm2m-observe.warnings.attributesNotApplied', { target: `${endpoint}${path}` }));
      }
      node.send({
        ...(msg ?? {}),
        topic: topicOf(endpoint, result.path),
        payload: result.value,
        lwm2m: {
          event: 'observe',
          endpoint,
          path: result.path,
          code: result.code,
          contentFormat: result.contentFormat,
          rttMs: result.rttMs,
          observationId: result.observationId,
        },
      });
      showActive();
    };

    const onNotification = (notification: Notification) => {
      if (!notification.owners.includes(owner)) return;
      const lastAt = notification.receivedAt;
      lastNotificationAt = lastAt;
      // A notification for this node means one observation at least, counted or not yet. The text is made only
      // when the status line is written (at most every STATUS_INTERVAL_MS), not per notification.
      const count = Math.max(active, 1);
      status.show(() => Status.observing(count, lastAt));
      const msg: NodeMessage = {
        topic: topicOf(notification.endpoint, notification.path),
        payload: notification.value,
        lwm2m: {
          event: 'notification',
          endpoint: notification.endpoint,
          path: notification.path,
          code: notification.code,
          contentFormat: notification.contentFormat,
          sequence: notification.sequence,
          observationId: notification.observationId,
          time: notification.receivedAt,
          // Notifications the device sent faster than allowed, left out in favour of this (the latest) value.
          ...(notification.coalesced !== undefined ? { coalesced: notification.coalesced } : {}),
        },
      };
      if (notification.error) {
        node.error(`${notification.endpoint}${notification.path}: ${notification.error}`, msg);
        return;
      }
      node.send(msg);
    };

    const onRegistered = (registration: Registration) => {
      for (const pattern of patterns) {
        if (!pattern.matches(registration.endpoint)) continue;
        startObservation(registration.endpoint, pattern.path, pattern.attributes).catch((err: Error) =>
          node.warn(
            _('lwm2m-observe.warnings.failed', {
              target: `${registration.endpoint}${pattern.path}`,
              error: err.message,
            }),
          ),
        );
      }
    };
    const onEnded = (observation: StoredObservation, reason: string, cause: ObservationEndCause) => {
      showActive();
      // The server cancelled it (the device flooded it): a flow waiting on it learns why. Its own cancel is told
      // where it happens (input), the end of a registration by register-in (and observed again when it comes back).
      if (cause !== 'flood' || !observation.owners.includes(owner)) return;
      node.send({
        topic: topicOf(observation.endpoint, observation.path),
        lwm2m: {
          event: 'cancelled',
          endpoint: observation.endpoint,
          path: observation.path,
          observationId: observation.id,
          reason,
        },
      });
    };

    server.on('notification', onNotification);
    server.on('registered', onRegistered);
    server.on('observationEnded', onEnded);
    serverNode.register(node, status.fromServer);

    const armPattern = async (endpointPattern: string, path: string, attributes: NotificationAttributes) => {
      const matches = endpointMatcher(endpointPattern);
      patterns.push({ matches, path, attributes });
      await serverNode.ready();
      const registrations = await server.listRegistrations();
      await Promise.all(
        registrations
          .filter((registration) => matches(registration.endpoint))
          .map((registration) =>
            startObservation(registration.endpoint, path, attributes).catch((err: Error) =>
              node.warn(
                _('lwm2m-observe.warnings.failed', { target: `${registration.endpoint}${path}`, error: err.message }),
              ),
            ),
          ),
      );
    };

    if (config.startOn !== 'input' && endpointSetting !== '' && (config.path ?? '').trim() !== '') {
      const path = (config.path ?? '').trim();
      const start = patternMode
        ? armPattern(endpointSetting, path, configuredAttributes)
        : startObservation(endpointSetting, path, configuredAttributes);
      start.catch((err: Error) => {
        // A device that is not registered yet is observed when it registers.
        if ((err as { code?: string }).code === 'not-registered') {
          patterns.push({
            matches: (endpoint) => endpoint === endpointSetting,
            path,
            attributes: configuredAttributes,
          });
          status.show(Status.waiting(_('lwm2m-observe.status.waitingFor', { endpoint: endpointSetting })));
          return;
        }
        status.show(Status.failed((err as { code?: string }).code ?? 'error'));
        // With a msg, so a Catch node can handle a failure that happened at deploy time too.
        const msg: NodeMessage = { topic: topicOf(endpointSetting, path) };
        failure(msg, err, endpointSetting, path);
        node.error(
          _('lwm2m-observe.warnings.failed', { target: `${endpointSetting}${path}`, error: err.message }),
          msg,
        );
      });
    }

    node.on('input', (msg, _send, done) => {
      let target: { endpoint: string; path: string } | undefined;
      Promise.resolve()
        .then(async () => {
          if (msg.cancel) {
            if (patternMode || (endpointSetting === '' && !msg.endpoint && !msg.topic)) {
              patterns.length = 0;
              const held = (await server.listObservations()).filter((item) => item.owners.includes(owner));
              await server.releaseOwner(owner);
              // One msg for all of them: the flow waiting on the cancel goes on.
              node.send({
                ...msg,
                payload: held.map((item) => ({ endpoint: item.endpoint, path: item.path })),
                lwm2m: {
                  event: 'cancelled',
                  ...(endpointSetting !== '' ? { endpoint: endpointSetting } : {}),
                  count: held.length,
                  reason: 'msg.cancel',
                },
              });
            } else {
              target = resolveTarget({ endpoint: config.endpoint, path: config.path }, msg);
              patterns.splice(0, patterns.length, ...patterns.filter((pattern) => !pattern.matches(target!.endpoint)));
              const observed = await server.cancelObservation(target.endpoint, target.path, owner);
              node.send({
                ...msg,
                topic: topicOf(target.endpoint, target.path),
                lwm2m: {
                  event: 'cancelled',
                  endpoint: target.endpoint,
                  path: target.path,
                  // false: this node held no observation there (nothing was sent to the device)
                  observed,
                  reason: 'msg.cancel',
                },
              });
            }
            showActive();
            return;
          }
          const attributes = { ...configuredAttributes, ...normaliseAttributes(msg.attributes) };
          const endpoint = endpointSetting || (typeof msg.endpoint === 'string' ? msg.endpoint : '');
          if (endpoint !== '' && isPattern(endpoint)) {
            const path = (config.path ?? '').trim() || String(msg.path ?? '');
            if (!path) throw new Lwm2mRequestError(t('errors.noPath'), 'bad-request', endpoint);
            await armPattern(endpoint, path, attributes);
            return;
          }
          target = resolveTarget({ endpoint: config.endpoint, path: config.path }, msg);
          await startObservation(target.endpoint, target.path, attributes, msg);
        })
        .then(() => done())
        .catch((err: unknown) => {
          const error = failure(msg, err, target?.endpoint, target?.path);
          status.show(Status.failed((msg.lwm2m as { code?: string }).code ?? 'error'));
          done(error);
        });
    });

    node.on('close', (removed: boolean, done: () => void) => {
      if (statusTimer) clearTimeout(statusTimer);
      status.close();
      server.off('notification', onNotification);
      server.off('registered', onRegistered);
      server.off('observationEnded', onEnded);
      // Deleted: cancel our observations on the devices. Redeployed: keep them for the next instance.
      serverNode.deregister(node, removed).then(done, done);
    });
  }
  RED.nodes.registerType('lwm2m-observe', Lwm2mObserveNode as unknown as (this: Node, def: NodeDef) => void);
};
