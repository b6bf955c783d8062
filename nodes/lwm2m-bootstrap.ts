import { readFile } from 'node:fs/promises';
import type { SecureListenerOptions } from '../lib/server/lwm2m-server';
import { parseSecurityFile } from '../lib/server/security';
import type { Lwm2mBootstrapConfigNode } from './shared/bootstrap-config';
import {
  acquireBootstrap,
  bootstrapHostKey,
  bootstrapServerFor,
  bootstrapSettled,
  bootstrapStoreProblemsOf,
  forgetBootstrapConfig,
  releaseBootstrap,
} from './shared/bootstrap-host';
import type { DefaultBootstrapConfig } from '../lib/bootstrap/provisioning';
import type { BootstrapHostOptions } from './shared/bootstrap-host';
import type { Node, NodeAPI, NodeDef, NodeStatus } from './shared/node-red';
import { numberOr, secureListener } from './shared/options';
import type { Lwm2mServerConfigNode } from './shared/server-config';
import { Status } from './shared/status';
import { storeSettings } from './shared/persistence';
import { followStoreLink, reportStoreProblems } from './shared/store-problems';
import { boundPorts, dropWarner, handshakeWarner, userDirPath } from './shared/listener-node';
import { catalog, t } from './shared/i18n';

interface BootstrapConfigDef extends NodeDef {
  address?: string;
  port?: string | number;
  plainEnabled?: boolean;
  dtlsEnabled?: boolean;
  securePort?: string | number;
  /** Offer the CBC cipher suites too (off by default: not constant-time). */
  dtlsCbc?: boolean;
  /** Bootstrap credentials of devices (JSON or CSV, as for the DM server), relative to the user directory. */
  credentialsFile?: string;
  /** Bootstrap configurations read at start: JSON `{ "<endpoint or pattern>": { servers: [...] }, ... }`. */
  configFile?: string;
  /** The lwm2m-server whose security store receives the PSKs provisioned (optional). */
  dmServer?: string;
  defaultEnabled?: boolean;
  defaultPattern?: string;
  defaultServerUri?: string;
  defaultSecurityMode?: string;
  defaultLifetime?: string | number;
  defaultBinding?: string;
  /** 'file' (default), 'redis' or 'memory'. */
  store?: string;
  redisUrl?: string;
  redisPrefix?: string;
}

/** The LwM2M bootstrap server as a config node: devices ask it for their servers and credentials. */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-bootstrap');
  function Lwm2mBootstrapNode(this: Lwm2mBootstrapConfigNode, config: BootstrapConfigDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const port = numberOr(config.port, 5685);
    const plainEnabled = config.plainEnabled !== false;
    const dtls: SecureListenerOptions | undefined =
      config.dtlsEnabled === true
        ? secureListener(numberOr(config.securePort, 5686), node.credentials ?? {}, config)
        : undefined;
    const dmServerId = config.dmServer;
    const dmServer = () => (dmServerId ? (RED.nodes.getNode(dmServerId) as Lwm2mServerConfigNode | null) : null);
    const dmSecurity = dmServerId ? () => dmServer()?.server.securityStore : undefined;
    // The DM server's account is the one on its CoAPs port; keys for other servers stay theirs.
    const isDmServer = (uri: string) => {
      const server = dmServer()?.server;
      if (!server) return false;
      try {
        const url = new URL(uri);
        const port = server.secureAddress?.port ?? server.options.dtls?.port ?? 5684;
        return url.protocol === 'coaps:' && Number(url.port || 5684) === port;
      } catch {
        return false;
      }
    };
    const defaultConfig: DefaultBootstrapConfig | undefined =
      config.defaultEnabled === true && (config.defaultServerUri ?? '').trim()
        ? {
            pattern: (config.defaultPattern ?? '').trim() || '*',
            serverUri: (config.defaultServerUri ?? '').trim(),
            securityMode: config.defaultSecurityMode === 'psk' ? 'psk' : 'nosec',
            lifetime: numberOr(config.defaultLifetime, 86400),
            binding: (config.defaultBinding ?? '').trim() || 'U',
          }
        : undefined;
    const address = (config.address ?? '').trim() || '::';
    const listenerName = `bootstrap-${address === '::' || address === '0.0.0.0' ? '' : address + '-'}${plainEnabled ? port : `s${dtls?.port}`}`;
    const options: BootstrapHostOptions = {
      address,
      port,
      plain: plainEnabled,
      ...(dtls ? { dtls } : {}),
      store: storeSettings(RED, config, node.credentials?.storeSecret, listenerName, port),
    };
    node.bootstrap = bootstrapServerFor(options, node.id, {
      dmSecurity,
      isDmServer,
      defaultConfig,
    });
    const bootstrap = node.bootstrap;

    const credentialsFile = userDirPath(RED, config.credentialsFile);
    const configFile = userDirPath(RED, config.configFile);
    // Files are read at each start; what flows added stays beside them.
    const loaded = Promise.all([
      credentialsFile
        ? readFile(credentialsFile, 'utf8').then((text) =>
            Promise.all(parseSecurityFile(text).map((info) => bootstrap.securityStore.add(info))),
          )
        : undefined,
      configFile
        ? readFile(configFile, 'utf8').then(async (text) => {
            const entries = Object.entries(JSON.parse(text) as Record<string, unknown>);
            for (const [key, value] of entries) await bootstrap.configStore.set(key, value);
            node.log(_('lwm2m-bootstrap.log.configsLoaded', { count: entries.length, file: configFile }));
          })
        : undefined,
    ]);

    const users = new Map<string, Node>();
    let lastStatus: NodeStatus = Status.stopped;
    let started: Promise<void> | undefined;
    const showStatus = (status: NodeStatus) => {
      lastStatus = status;
      for (const user of users.values()) user.status(status);
    };
    const storeProblems = bootstrapStoreProblemsOf(bootstrap);
    // The stores outlive this node: their problems (those found while they opened too) and Redis going and coming.
    const storeLink = followStoreLink(bootstrapHostKey(bootstrap.options), {
      down: (err) => {
        showStatus(Status.error(t('status.storeUnreachable')));
        node.error(t('errors.storeDown', { error: err.message }));
      },
      up: () => {
        node.log(t('log.storeBack'));
        refresh();
      },
    });
    const refresh = () => {
      if (!bootstrap.running || storeLink.down) return;
      const sessions = bootstrap.activeSessions().length;
      const status = Status.ok(
        _('lwm2m-bootstrap.status.listening', { ports: boundPorts(plainEnabled, bootstrap) }) +
          (sessions ? ` · ${_('lwm2m-bootstrap.status.busy', { count: sessions })}` : ''),
      );
      // What the store skipped when it was read: yellow, until the stores are opened again.
      showStatus(Status.noted(status, storeProblems?.statusText()));
    };
    const stopStoreProblems = reportStoreProblems(node, storeProblems, refresh);
    const onStopped = () => showStatus(Status.stopped);
    const onError = (err: Error) => node.warn(err.message);
    const onHandshakeFailed = handshakeWarner(node);
    bootstrap.on('started', refresh);
    bootstrap.on('bootstrapStarted', refresh);
    bootstrap.on('bootstrapFinished', refresh);
    bootstrap.on('bootstrapFailed', refresh);
    bootstrap.on('stopped', onStopped);
    bootstrap.on('error', onError);
    bootstrap.on('handshakeFailed', onHandshakeFailed);
    const onRecordsDropped = dropWarner(node);
    bootstrap.on('dtlsRecordsDropped', onRecordsDropped);

    node.register = (user: Node) => {
      users.set(user.id, user);
      user.status(lastStatus);
      if (users.size === 1) {
        showStatus(Status.starting);
        started = loaded
          .catch((err: Error) => node.error(_('lwm2m-bootstrap.errors.files', { error: err.message })))
          .then(() => acquireBootstrap(bootstrap, node.id))
          .then(() => refresh())
          .catch((err: Error) => {
            const reason = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? t('status.portInUse') : err.message;
            showStatus(Status.error(reason));
            node.error(_('lwm2m-bootstrap.errors.cannotStart', { error: err.message }));
            throw err;
          });
        started.catch(() => undefined);
      }
    };
    node.deregister = async (user: Node) => {
      users.delete(user.id);
      if (users.size === 0) {
        started = undefined;
        await releaseBootstrap(bootstrap, node.id);
      }
    };
    node.ready = () => started ?? Promise.reject(new Error(_('lwm2m-bootstrap.errors.noUsers')));

    node.on('close', (done: () => void) => {
      for (const event of ['started', 'bootstrapStarted', 'bootstrapFinished', 'bootstrapFailed'] as const)
        bootstrap.off(event, refresh);
      bootstrap.off('stopped', onStopped);
      bootstrap.off('error', onError);
      bootstrap.off('handshakeFailed', onHandshakeFailed);
      bootstrap.off('dtlsRecordsDropped', onRecordsDropped);
      stopStoreProblems();
      storeLink.stop();
      const stop = users.size > 0 ? releaseBootstrap(bootstrap, node.id) : bootstrapSettled(bootstrap);
      users.clear();
      forgetBootstrapConfig(bootstrap, node.id);
      stop.then(
        () => done(),
        () => done(),
      );
    });
  }

  RED.nodes.registerType('lwm2m-bootstrap', Lwm2mBootstrapNode as unknown as (this: Node, def: NodeDef) => void, {
    credentials: {
      certificate: { type: 'text' },
      privateKey: { type: 'password' },
      trustedCertificates: { type: 'text' },
      storeSecret: { type: 'password' },
    },
  });
};
