import { readFile } from 'node:fs/promises';
import { FirmwareCampaign } from '../lib/firmware/campaign';
import type { FirmwareCampaignJobOptions } from '../lib/firmware/campaign';
import type { FirmwareJob } from '../lib/firmware/job';
import type { FirmwareMethod } from '../lib/firmware/job-types';
import { resumeJobs } from '../lib/firmware/resume';
import type { FirmwareJobRecord, FirmwareJobStore } from '../lib/firmware/store';
import { firmwareJobStoreOf } from './shared/server-host';
import type { Node, NodeAPI, NodeDef, NodeMessage } from './shared/node-red';
import { serverConfig } from './shared/operation-node';
import { numberOr } from './shared/options';
import { endpointMatcher } from './shared/resolve';
import { OwnStatus } from './shared/own-status';
import { Status } from './shared/status';
import { userDirPath } from './shared/listener-node';
import { catalog } from './shared/i18n';

interface FirmwareConfig extends NodeDef {
  server?: string;
  /** A name, a comma-separated list, or a pattern (`valve-*`, /regex/) over the registered devices. */
  endpoint?: string;
  method?: string;
  /** A file (relative to the user directory) or a URL the device fetches; blank: msg.payload / msg.filename / msg.url. */
  source?: string;
  expectedVersion?: string;
  concurrency?: string | number;
  retries?: string | number;
  /** Minutes. */
  downloadTimeout?: string | number;
  updateTimeout?: string | number;
  /** Minutes between Execute Update requests while the device defers (Update Result 11); empty: never. */
  deferredRetry?: string | number;
  baseUri?: string;
  /**
   * Delivery 'pull-https': a certificate (chain, PEM) and its private key, files relative to the user directory;
   * blank: the certificate and key of the server config node (its DTLS credentials).
   */
  httpsCertificate?: string;
  httpsKey?: string;
}

/** A flow mistake, told to a Catch node with the reason. */
class FirmwareInputError extends Error {
  override name = 'FirmwareInputError';
}

/**
 * Firmware over the air for one device or a fleet: msg in with the image (or a file, or a URL the devices
 * fetch) and the targets; progress out of output 1, each device's outcome and a summary out of output 2.
 * msg.action pause / resume / cancel steers the campaign in progress.
 */
export = function (RED: NodeAPI): void {
  const _ = catalog(RED, 'lwm2m-firmware-update');
  function Lwm2mFirmwareUpdateNode(this: Node, config: FirmwareConfig): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const serverNode = serverConfig(RED, node, config.server);
    if (!serverNode) return;
    // Its own status (the campaign's progress and outcome), and the server's only when it has a problem.
    const status = new OwnStatus(node);
    serverNode.register(node, status.fromServer);
    let running: FirmwareCampaign | undefined;
    // This node's job records (a campaign id starts with the node's id): what a restart interrupted is resumed.
    const sharedJobs = firmwareJobStoreOf(serverNode.server);
    const jobStore = sharedJobs ? ownRecords(sharedJobs, `${node.id}:`) : undefined;
    const resumed = new Set<FirmwareJob>();
    const send = (msgs: Array<NodeMessage | null>) => node.send(msgs);
    const followResumed = (job: FirmwareJob) => {
      resumed.add(job);
      job.on('progress', (progress) =>
        send([{ topic: progress.endpoint, payload: progress, lwm2m: { event: 'progress' } }, null]),
      );
      job
        .run()
        .then(
          (result) =>
            send([
              null,
              {
                topic: result.endpoint,
                payload: result,
                lwm2m: { event: result.ok ? 'updated' : 'failed', endpoint: result.endpoint },
              },
            ]),
          (err: Error) => node.warn(_('lwm2m-firmware-update.warnings.resumedJob', { error: err.message })),
        )
        .finally(() => resumed.delete(job));
    };
    if (jobStore) {
      serverNode
        .ready()
        .then(() => resumeJobs(serverNode.server, jobStore))
        .then((interrupted) => {
          for (const entry of interrupted) {
            const { record, result, job, reason } = entry;
            const lwm2m = { event: 'interrupted', endpoint: record.endpoint, jobId: record.id };
            send([
              null,
              {
                topic: record.endpoint,
                payload: { ...result, ...(reason ? { reason } : { reason: 'resumed' }) },
                lwm2m,
              },
            ]);
            if (job) followResumed(job);
          }
        })
        .catch((err: Error) => node.warn(_('lwm2m-firmware-update.warnings.notResumed', { error: err.message })));
    }

    const targets = async (msg: NodeMessage): Promise<string[]> => {
      const fromMsg = msg.endpoint ?? msg.topic;
      const setting = (config.endpoint ?? '').trim();
      const wanted: string[] = setting
        ? setting.split(',').map((item) => item.trim())
        : Array.isArray(fromMsg)
          ? (fromMsg as unknown[]).map(String)
          : typeof fromMsg === 'string' && fromMsg !== ''
            ? [fromMsg]
            : [];
      if (wanted.length === 0) throw new FirmwareInputError(_('lwm2m-firmware-update.errors.noTarget'));
      const registered = (await serverNode.server.listRegistrations()).map((registration) => registration.endpoint);
      const found = new Set<string>();
      for (const item of wanted) {
        if (/[*?]/.test(item) || (item.length > 2 && item.startsWith('/') && item.endsWith('/'))) {
          const matches = endpointMatcher(item);
          for (const endpoint of registered) if (matches(endpoint)) found.add(endpoint);
        } else found.add(item);
      }
      if (found.size === 0)
        throw new FirmwareInputError(_('lwm2m-firmware-update.errors.noMatch', { wanted: wanted.join(', ') }));
      return [...found];
    };

    /** A certificate of this node's own for HTTPS, else none: the package server uses the config node's. */
    const httpsCertificate = async (): Promise<Pick<FirmwareCampaignJobOptions, 'httpsCertificate'>> => {
      const certFile = (config.httpsCertificate ?? '').trim();
      const keyFile = (config.httpsKey ?? '').trim();
      if (!certFile && !keyFile) return {};
      if (!certFile || !keyFile) throw new FirmwareInputError(_('lwm2m-firmware-update.errors.httpsPair'));
      const [cert, key] = await Promise.all(
        [certFile, keyFile].map((file) =>
          readFile(userDirPath(RED, file)).catch((err: Error) => {
            throw new FirmwareInputError(_('lwm2m-firmware-update.errors.unreadable', { file, error: err.message }));
          }),
        ),
      );
      return { httpsCertificate: { chain: [cert], privateKey: key } };
    };

    const jobOptions = async (msg: NodeMessage): Promise<FirmwareCampaignJobOptions> => {
      // 'pull-http' / 'pull-https': the device pulls over HTTP(S) from this Node-RED instead of over CoAP.
      const via: 'http' | 'https' | undefined =
        config.method === 'pull-http' ? 'http' : config.method === 'pull-https' ? 'https' : undefined;
      const method = (
        via ? 'pull' : ['push', 'pull', 'auto'].includes(config.method ?? '') ? config.method : 'auto'
      ) as FirmwareMethod;
      const common = {
        method,
        ...(via ? { pullVia: via } : {}),
        ...(via === 'https' ? await httpsCertificate() : {}),
        ...(config.expectedVersion || msg.version
          ? { expectedFirmwareVersion: String(config.expectedVersion || msg.version) }
          : {}),
        ...(config.baseUri ? { baseUri: config.baseUri } : {}),
        timeouts: {
          downloadMs:
            numberOr(config.downloadTimeout, 0) > 0 ? numberOr(config.downloadTimeout, 0) * 60_000 : undefined,
          updateMs: numberOr(config.updateTimeout, 0) > 0 ? numberOr(config.updateTimeout, 0) * 60_000 : undefined,
          deferredRetryMs:
            numberOr(config.deferredRetry, 0) > 0 ? numberOr(config.deferredRetry, 0) * 60_000 : undefined,
        },
      };
      const source = (config.source ?? '').trim() || (typeof msg.url === 'string' ? msg.url : '') || '';
      if (/^(coaps?|https?):\/\//.test(source)) return { ...common, uri: source };
      const file = source || (typeof msg.filename === 'string' ? msg.filename : '');
      if (file) {
        const resolved = userDirPath(RED, file);
        const image = await readFile(resolved).catch((err: Error) => {
          throw new FirmwareInputError(
            _('lwm2m-firmware-update.errors.imageUnreadable', { file: resolved, error: err.message }),
          );
        });
        // Recorded with a job store, so that an interrupted job can load the image again.
        return { ...common, image, imageSource: resolved };
      }
      if (Buffer.isBuffer(msg.payload) && msg.payload.length > 0) return { ...common, image: msg.payload };
      throw new FirmwareInputError(_('lwm2m-firmware-update.errors.noImage'));
    };

    node.on('input', (msg, send, done) => {
      const action = typeof msg.action === 'string' ? msg.action.toLowerCase() : undefined;
      if (action === 'pause' || action === 'resume' || action === 'cancel') {
        if (!running) {
          done(new FirmwareInputError(_('lwm2m-firmware-update.errors.notRunning', { action })));
          return;
        }
        if (action === 'pause') running.pause();
        else if (action === 'resume') running.resume();
        else void running.cancel();
        done();
        return;
      }
      if (running) {
        done(new FirmwareInputError(_('lwm2m-firmware-update.errors.running')));
        return;
      }
      Promise.all([targets(msg), jobOptions(msg)])
        .then(([endpoints, job]) => {
          const campaign = new FirmwareCampaign(serverNode.server, {
            endpoints,
            job,
            ...(jobStore ? { store: jobStore, id: `${node.id}:${Date.now().toString(36)}` } : {}),
            concurrency: numberOr(config.concurrency, 10),
            retries: numberOr(config.retries, 1),
          });
          running = campaign;
          let finished = 0;
          const show = () =>
            status.show(
              endpoints.length === 1
                ? Status.busy(_('lwm2m-firmware-update.status.updating'))
                : Status.busy(
                    `${finished}/${endpoints.length}` +
                      (campaign.isPaused ? ` ${_('lwm2m-firmware-update.status.paused')}` : ''),
                  ),
            );
          show();
          campaign.on('progress', (progress) => {
            if (endpoints.length === 1)
              status.show(
                Status.busy(progress.percent === undefined ? progress.state : `${progress.state} ${progress.percent}%`),
              );
            send([{ topic: progress.endpoint, payload: progress, lwm2m: { event: 'progress' } }, null]);
          });
          campaign.on('device', (outcome) => {
            finished++;
            show();
            send([
              null,
              {
                topic: outcome.endpoint,
                payload: {
                  ...outcome.result,
                  attempts: outcome.attempts,
                  ...(outcome.error ? { error: outcome.error } : {}),
                },
                lwm2m: { event: outcome.ok ? 'updated' : 'failed', endpoint: outcome.endpoint },
              },
            ]);
          });
          campaign.on('paused', show);
          campaign.on('resumed', show);
          return campaign.run().then((summary) => {
            running = undefined;
            status.show(
              summary.failed === 0
                ? Status.ok(_('lwm2m-firmware-update.status.updated', { count: summary.succeeded }))
                : Status.error(
                    _('lwm2m-firmware-update.status.someFailed', { ok: summary.succeeded, failed: summary.failed }),
                  ),
            );
            const { devices, ...totals } = summary;
            send([null, { ...msg, topic: 'summary', payload: { ...totals, devices: devices.map((d) => d.endpoint) } }]);
            done();
          });
        })
        .catch((err: Error) => {
          running = undefined;
          status.show(
            Status.error(
              _(
                err instanceof FirmwareInputError
                  ? 'lwm2m-firmware-update.status.badInput'
                  : 'lwm2m-firmware-update.status.error',
              ),
            ),
          );
          done(err);
        });
    });

    node.on('close', (removed: boolean, done: () => void) => {
      const stopping = Promise.all([
        running ? running.cancel().catch(() => undefined) : undefined,
        ...[...resumed].map((job) => job.cancel().catch(() => undefined)),
      ]);
      running = undefined;
      status.close();
      stopping.then(() => serverNode.deregister(node, removed)).then(done, done);
    });
  }
  RED.nodes.registerType(
    'lwm2m-firmware-update',
    Lwm2mFirmwareUpdateNode as unknown as (this: Node, def: NodeDef) => void,
  );
};

/** The records of one node's campaigns in the server's job store (several firmware nodes share it). */
function ownRecords(store: FirmwareJobStore, campaignPrefix: string): FirmwareJobStore {
  return {
    save: (record: FirmwareJobRecord) => store.save(record),
    remove: (id: string) => store.remove(id),
    list: async () => (await store.list()).filter((record) => record.campaignId?.startsWith(campaignPrefix) === true),
  };
}
