import { readFile } from 'node:fs/promises';
import { ObjectModel } from '../lib/model/object-model';
import { parseSecurityFile } from '../lib/server/security';
import { DEFAULT_MAX_WRITE_BYTES } from '../lib/server/write-limit';
import { DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS, DEFAULT_SERVER_OPTIONS } from '../lib/server/lwm2m-server';
import type { QueuedRequestSettled } from '../lib/server/lwm2m-server';
import type { LimitReport } from '../lib/server/limit-warnings';
import type { Node, NodeAPI, NodeDef, NodeStatus } from './shared/node-red';
import type { Lwm2mServerConfigNode } from './shared/server-config';
import {
  acquire,
  forgetConfig,
  hostKey,
  release,
  serverFor,
  settled,
  storeDescription,
  storeProblemsOf,
} from './shared/server-host';
import { followStoreLink, reportStoreProblems } from './shared/store-problems';
import { storeSettings } from './shared/persistence';
import { numberOr, secureListener, writeLimitOption } from './shared/options';
import { Status } from './shared/status';
import { boundPorts, dropWarner, handshakeWarner, userDirPath } from './shared/listener-node';
import { catalog, t } from './shared/i18n';
import type { Translate } from './shared/i18n';

interface ServerConfigDef extends NodeDef {
  address?: string;
  port?: string | number;
  lifetimeGrace?: string | number;
  ackTimeout?: string | number;
  ackRandomFactor?: string | number;
  maxRetransmit?: string | number;
  nstart?: string | number;
  modelDir?: string;
  reobserve?: boolean;
  acceptSend?: boolean;
  queueTtl?: string | number;
  maxQueued?: string | number;
  /** Write size limit, KiB (blank: 1024; 0: none). */
  maxWriteKiB?: string | number;
  /** Plain CoAP on `port`; absent in flows made before DTLS: on. */
  plainEnabled?: boolean;
  /** DTLS on `securePort`; absent in flows made before DTLS: off. */
  dtlsEnabled?: boolean;
  securePort?: string | number;
  /** Offer the CBC cipher suites too (off by default: not constant-time). */
  dtlsCbc?: boolean;
  /** Device credentials loaded at start (JSON or CSV; relative to the user directory). */
  credentialsFile?: string;
  /** 'file' (default), 'redis' or 'memory'. */
  store?: string;
  storeDir?: string;
  redisUrl?: string;
  redisPrefix?: string;
  instanceId?: string;
  /** Registrations held at most (0 = no cap). */
  maxRegistrations?: string | number;
  /** New registrations one address may make at once, then per second. */
  newRegistrationsBurst?: string | number;
  newRegistrationsRate?: string | number;
  /** Requests a second one address may send (0 = no limit). */
  requestsPerAddress?: string | number;
  /** Notifications a second per observation when its pmin is not known (0 = no ceiling). */
  notificationRate?: string | number;
  /** An observation receiving more than floodRate notifications a second for floodSeconds is cancelled. */
  floodRate?: string | number;
  floodSeconds?: string | number;
}

/** The server's write size limit from its field; a bad value is reported and the default used. */
function configuredWriteLimit(node: Node, _: Translate, kib: unknown): number {
  try {
    return writeLimitOption(kib, _('lwm2m-server.label.writeSize')) ?? DEFAULT_MAX_WRITE_BYTES;
  } catch (err) {
    node.warn(
      _('lwm2m-server.warnings.writeSize', { error: (err as Error).message, kib: DEFAULT_MAX_WRITE_BYTES / 1024 }),
    );
    return DEFAULT_MAX_WRITE_BYTES;
  }
}

export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-server');
  function Lwm2mServerNode(this: Lwm2mServerConfigNode, config: ServerConfigDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const port = numberOr(config.port, 5683);
    const plainEnabled = config.plainEnabled !== false;
    const dtls =
      config.dtlsEnabled === true
        ? secureListener(numberOr(config.securePort, 5684), node.credentials ?? {}, config)
        : undefined;
    const model = ObjectModel.withBuiltins();
    const modelDir = userDirPath(RED, config.modelDir);
    const credentialsFile = userDirPath(RED, config.credentialsFile);
    const modelLoaded: Promise<void> = modelDir
      ? model.loadFolder(modelDir).then((report) => {
          node.log(_('lwm2m-server.log.modelLoaded', { count: report.loaded, folder: modelDir }));
          for (const problem of report.errors)
            node.warn(_('lwm2m-server.warnings.model', { problem: `${problem.file}: ${problem.error}` }));
        })
      : Promise.resolve();

    const address = (config.address ?? '').trim() || '::';
    const listenerName = `${address === '::' || address === '0.0.0.0' ? 'coap' : address}-${plainEnabled ? port : `s${dtls?.port}`}`;
    const store = storeSettings(RED, config, node.credentials?.storeSecret, listenerName, port);
    node.server = serverFor(
      {
        address,
        port,
        store,
        plain: plainEnabled,
        ...(dtls ? { dtls } : {}),
        lifetimeGraceSeconds: numberOr(config.lifetimeGrace, 15),
        defaultLifetimeSeconds: 86400,
        reobserveOnRegister: config.reobserve !== false,
        acceptSend: config.acceptSend !== false,
        queuedRequestTtlMs: numberOr(config.queueTtl, 3600) * 1000,
        maxQueuedPerDevice: numberOr(config.maxQueued, 32),
        maxWriteBytes: configuredWriteLimit(node, _, config.maxWriteKiB),
        maxRegistrations: numberOr(config.maxRegistrations, DEFAULT_SERVER_OPTIONS.maxRegistrations),
        newRegistrationsBurstPerAddress: numberOr(
          config.newRegistrationsBurst,
          DEFAULT_SERVER_OPTIONS.newRegistrationsBurstPerAddress,
        ),
        newRegistrationsPerAddressPerSecond: numberOr(
          config.newRegistrationsRate,
          DEFAULT_SERVER_OPTIONS.newRegistrationsPerAddressPerSecond,
        ),
        maxNotificationsPerSecond: numberOr(config.notificationRate, DEFAULT_SERVER_OPTIONS.maxNotificationsPerSecond),
        notificationBurst: DEFAULT_SERVER_OPTIONS.notificationBurst,
        floodNotificationsPerSecond: numberOr(config.floodRate, DEFAULT_SERVER_OPTIONS.floodNotificationsPerSecond),
        floodSeconds: numberOr(config.floodSeconds, DEFAULT_SERVER_OPTIONS.floodSeconds),
        model,
        coap: {
          ackTimeoutMs: numberOr(config.ackTimeout, 2000),
          ackRandomFactor: numberOr(config.ackRandomFactor, 1.5),
          maxRetransmit: numberOr(config.maxRetransmit, 4),
          nstart: numberOr(config.nstart, 1),
          maxRequestsPerSecondPerAddress: numberOr(config.requestsPerAddress, DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS),
        },
      },
      node.id,
    );
    const server = node.server;
    // Device credentials from a file are (re)loaded at each start; entries added from flows stay too.
    const credentialsLoaded: Promise<void> = credentialsFile
      ? readFile(credentialsFile, 'utf8')
          .then((text) => Promise.all(parseSecurityFile(text).map((info) => server.securityStore.add(info))))
          .then((added) =>
            node.log(_('lwm2m-server.log.credentialsLoaded', { count: added.length, file: credentialsFile })),
          )
      : Promise.resolve();
    /** Node id -> how that node shows the server's status (its own status line by default). */
    const users = new Map<string, (status: NodeStatus) => void>();
    let lastStatus: NodeStatus = Status.stopped;
    let started: Promise<void> | undefined;
    let statusTimer: NodeJS.Timeout | undefined;

    const showStatus = (status: NodeStatus) => {
      lastStatus = status;
      for (const showServerStatus of users.values()) showServerStatus(status);
    };
    // Registrations can arrive by the thousand: count them at most once a second.
    const refreshCount = () => {
      if (statusTimer) return;
      statusTimer = setTimeout(() => {
        statusTimer = undefined;
        if (!server.running) return;
        server.registrations
          .size()
          .then(
            (count) =>
              server.running &&
              showStatus(Status.listening(boundPorts(plainEnabled, server), count, storeProblems?.statusText())),
          )
          .catch(() => undefined);
      }, 1000);
    };
    const onStarted = () => {
      refreshCount();
      showStatus(Status.listening(boundPorts(plainEnabled, server), 0, storeProblems?.statusText()));
    };
    const onStopped = () => showStatus(Status.stopped);
    const onServerError = (err: Error) => node.warn(err.message);
    // Already throttled by the server: the first of a kind, then one line a minute with the count.
    const onLimited = (report: LimitReport) =>
      node.warn(_('lwm2m-server.warnings.limit', { kind: report.kind, message: report.message }));
    // A request held for a sleeping device before a redeploy or restart went out: its flow msg is gone, so say it here.
    const onQueuedSettled = (settled: QueuedRequestSettled) =>
      node.log(
        settled.code !== undefined
          ? _('lwm2m-server.log.heldAnswered', {
              request: settled.description,
              endpoint: settled.endpoint,
              code: settled.code,
            })
          : _('lwm2m-server.log.heldFailed', {
              request: settled.description,
              endpoint: settled.endpoint,
              error: settled.error,
            }),
      );
    // The stores outlive this node: their problems reach whichever config node holds them now, those found while
    // they opened (before this node existed) included.
    const storeProblems = storeProblemsOf(server);
    const stopStoreProblems = reportStoreProblems(node, storeProblems, () => server.running && refreshCount());
    const storeLink = followStoreLink(hostKey(server.options), {
      down: (err) => {
        showStatus(Status.error(t('status.storeUnreachable')));
        node.error(t('errors.storeUnreachable', { store: storeDescription(server) ?? store.kind, error: err.message }));
      },
      up: () => {
        node.log(t('log.storeReachable', { store: storeDescription(server) ?? store.kind }));
        if (server.running) onStarted();
      },
    });
    const onHandshakeFailed = handshakeWarner(node);
    server.on('handshakeFailed', onHandshakeFailed);
    const onRecordsDropped = dropWarner(node);
    server.on('dtlsRecordsDropped', onRecordsDropped);
    server.on('started', onStarted);
    server.on('stopped', onStopped);
    server.on('registered', refreshCount);
    server.on('deregistered', refreshCount);
    server.on('expired', refreshCount);
    server.on('error', onServerError);
    server.on('limited', onLimited);
    server.on('queuedRequestSettled', onQueuedSettled);

    node.register = (user: Node, showServerStatus = (status: NodeStatus) => user.status(status)) => {
      users.set(user.id, showServerStatus);
      showServerStatus(lastStatus);
      if (users.size === 1) {
        showStatus(Status.starting);
        started = modelLoaded
          .catch((err: Error) => node.warn(_('lwm2m-server.warnings.model', { problem: err.message })))
          .then(() => credentialsLoaded)
          .catch((err: Error) =>
            node.error(_('lwm2m-server.errors.credentials', { file: credentialsFile, error: err.message })),
          )
          .then(() => acquire(server, node.id))
          .then(() => {
            if (server.address) onStarted();
            node.log(_('lwm2m-server.log.store', { store: storeDescription(server) ?? store.kind }));
          })
          .catch((err: Error) => {
            const reason = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? t('status.portInUse') : err.message;
            showStatus(Status.error(reason));
            const where = [plainEnabled ? port : undefined, dtls?.port].filter((p) => p !== undefined).join(', ');
            node.error(
              _('lwm2m-server.errors.cannotStart', {
                address: config.address || '::',
                ports: where,
                error: err.message,
              }),
            );
            throw err;
          });
        started.catch(() => undefined);
      }
    };

    node.deregister = async (user: Node, removed: boolean) => {
      if (removed) await server.releaseOwner(user.id).catch((err: Error) => node.warn(err.message));
      users.delete(user.id);
      if (users.size === 0) {
        started = undefined;
        await release(server, node.id);
      }
    };

    node.ready = () => started ?? Promise.reject(new Error(_('lwm2m-server.errors.noUsers')));

    node.on('close', (done: () => void) => {
      if (statusTimer) clearTimeout(statusTimer);
      server.off('started', onStarted);
      server.off('stopped', onStopped);
      server.off('registered', refreshCount);
      server.off('deregistered', refreshCount);
      server.off('expired', refreshCount);
      server.off('error', onServerError);
      server.off('limited', onLimited);
      server.off('queuedRequestSettled', onQueuedSettled);
      server.off('handshakeFailed', onHandshakeFailed);
      server.off('dtlsRecordsDropped', onRecordsDropped);
      stopStoreProblems();
      storeLink.stop();
      // Users deregister in their own close; whatever is left is released here, and the socket is closed
      // before done() so a redeploy can bind the same port at once.
      const stop = users.size > 0 ? release(server, node.id) : settled(server);
      users.clear();
      forgetConfig(server, node.id);
      stop.then(
        () => done(),
        () => done(),
      );
    });
  }

  RED.nodes.registerType('lwm2m-server', Lwm2mServerNode as unknown as (this: Node, def: NodeDef) => void, {
    credentials: {
      certificate: { type: 'text' },
      privateKey: { type: 'password' },
      trustedCertificates: { type: 'text' },
      storeSecret: { type: 'password' },
    },
  });
};
