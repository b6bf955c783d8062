import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import path from 'node:path';
import type { BootstrapConfigStore } from '../../lib/bootstrap/config';
import { MemoryBootstrapConfigStore } from '../../lib/bootstrap/config';
import { MemoryDtlsSessionStore } from '../../lib/dtls';
import type { DtlsSessionStore } from '../../lib/dtls';
import type { SecurityStore } from '../../lib/server/security';
import { MemoryFirmwareJobStore } from '../../lib/firmware/store';
import type { FirmwareJobRecord, FirmwareJobStore } from '../../lib/firmware/store';
import type { ObservationStore, RegistrationStore } from '../../lib/server/stores';
import type { QueuedRequestRecord, QueuedRequestStore } from '../../lib/server/queue-mode';
import {
  FileBootstrapConfigStore,
  FileDtlsSessionStore,
  FileObservationStore,
  FileRecordStore,
  FileRegistrationStore,
  FileSecurityStore,
  openJournal,
  safeFileName,
} from '../../lib/store/file';
import type { Journal } from '../../lib/store/journal';
import { MemoryObservationStore, MemoryRecordStore, MemoryRegistrationStore } from '../../lib/store/memory';
import { MemorySecurityStore } from '../../lib/store/memory-security';
import {
  RedisBootstrapConfigStore,
  RedisDtlsSessionStore,
  RedisLink,
  RedisObservationStore,
  RedisRecordStore,
  RedisRegistrationStore,
  RedisSecurityStore,
} from '../../lib/store/redis';
import { StoreProblemLog } from '../../lib/store/problems';
import type { SkippedCount } from '../../lib/store/problems';
import { SecretBox } from '../../lib/store/secret-box';
import type { NodeAPI } from './node-red';
import { t } from './i18n';

export type StoreKind = 'file' | 'memory' | 'redis';

/** Where a server (or bootstrap server) keeps its state, from its config node. */
export interface StoreSettings {
  kind: StoreKind;
  /** file: the folder of the journal (`<userDir>/lwm2m-store/<listener>`). */
  dir?: string;
  /** Seals secrets in files and in Redis. */
  secret?: string;
  redisUrl?: string;
  redisPrefix?: string;
  /** redis: this instance, stable across restarts (default `<hostname>:<port>`). */
  instanceId?: string;
}

/** What the config node's fields say, with the defaults filled in. */
export function storeSettings(
  RED: NodeAPI,
  config: { store?: string; storeDir?: string; redisUrl?: string; redisPrefix?: string; instanceId?: string },
  configuredSecret: string | undefined,
  listener: string,
  port: number,
): StoreSettings {
  let kind: StoreKind = config.store === 'memory' || config.store === 'redis' ? config.store : 'file';
  // Port 0 takes a different free port at each start: no device could come back to what a file kept.
  if (kind === 'file' && port === 0 && !(config.storeDir ?? '').trim()) kind = 'memory';
  // Redis is shared by instances that each generated their own secret: only a configured one (the node's, or
  // credentialSecret in settings.js) is the same everywhere.
  const secret = configuredSecret || credentialSecret(RED, kind !== 'redis');
  if (kind === 'memory') return { kind };
  if (kind === 'redis') {
    return {
      kind,
      redisUrl: (config.redisUrl ?? '').trim() || 'redis://127.0.0.1:6379',
      redisPrefix: (config.redisPrefix ?? '').trim() || 'lwm2m:',
      instanceId: (config.instanceId ?? '').trim() || `${hostname()}:${port}`,
      ...(secret ? { secret } : {}),
    };
  }
  const userDir = RED.settings.userDir;
  const own = (config.storeDir ?? '').trim();
  if (!own && !userDir) return { kind: 'memory' }; // no user directory (an embedding without one): nothing to write to
  const dir = own
    ? path.resolve(userDir ?? process.cwd(), own)
    : path.join(userDir!, 'lwm2m-store', safeFileName(listener));
  return { kind, dir, ...(secret ? { secret } : {}) };
}

/** Node-RED's own credential secret: the one in settings.js, or the one it generated and keeps in its runtime settings. */
function credentialSecret(RED: NodeAPI, generatedToo: boolean): string | undefined {
  const settings = RED.settings as unknown as { credentialSecret?: unknown; get?: (name: string) => unknown };
  if (typeof settings.credentialSecret === 'string' && settings.credentialSecret !== '')
    return settings.credentialSecret;
  if (!generatedToo) return undefined;
  try {
    const generated = settings.get?.('_credentialSecret');
    return typeof generated === 'string' && generated !== '' ? generated : undefined;
  } catch {
    return undefined;
  }
}

/** The same settings, as one comparable string (a redeploy that changes them opens new stores). */
export function settingsKey(settings: StoreSettings): string {
  return JSON.stringify([
    settings.kind,
    settings.dir,
    settings.redisUrl,
    settings.redisPrefix,
    settings.instanceId,
    settings.secret,
  ]);
}

/** The stores of one host, and their life: ready before the server starts, closed when replaced. */
export interface PersistentStores {
  settings: StoreSettings;
  /** Resolves once the stores hold what was saved (Redis: once connected and read). */
  ready: Promise<void>;
  close(): Promise<void>;
  /** Redis: the link (cluster bus, status events). */
  link?: RedisLink;
  /** Short words for the config node's status and log. */
  describe: string;
}

export interface ServerStores extends PersistentStores {
  registrationStore: RegistrationStore;
  observationStore: ObservationStore;
  securityStore: SecurityStore;
  dtlsSessions: DtlsSessionStore;
  /** Records of running firmware jobs: what a restart interrupted is resumed from them. */
  firmwareJobs: FirmwareJobStore;
  /** Requests held for sleeping devices: they still go out after a redeploy or a restart. */
  queuedRequests: QueuedRequestStore;
}

export interface BootstrapStores extends PersistentStores {
  configStore: BootstrapConfigStore;
  securityStore: SecurityStore;
  dtlsSessions: DtlsSessionStore;
}

/** Reports what could not be read back (counted, when the store counted it) or written, without stopping anything. */
export type StoreProblemReporter = (message: string, counted?: SkippedCount) => void;

/**
 * Redis going away and coming back, by host key: the stores outlive the config nodes, which listen here while they
 * exist. Events: 'down' (key, error), 'up' (key). Problems are kept by the stores themselves (`problems`): most
 * are found while the stores open, before any config node could listen.
 */
export const storeEvents = new EventEmitter().setMaxListeners(0);

/** Stores as a host keeps them: with their problems, kept for whoever comes to look. */
export interface ReportedStores {
  problems: StoreProblemLog;
}

/** What a host registry opens its stores with: the host's key (for the events) and the settings. */
export interface HostStoreSettings {
  key: string;
  settings: StoreSettings;
}

/**
 * A host registry's store factory: `open`, with its problems kept in `problems` (a journal reports them while it is
 * read, here, before any config node exists) and Redis going and coming told through `storeEvents`.
 */
export function reportingStores<S extends PersistentStores>(
  open: (settings: StoreSettings, problem: StoreProblemReporter) => S,
): (host: HostStoreSettings) => S & ReportedStores {
  return ({ key, settings }) => {
    const problems = new StoreProblemLog();
    const stores = Object.assign(
      open(settings, (message, counted) => problems.report(message, counted)),
      { problems },
    );
    // Stores closed before they were ever ready (Redis never reached) reject `ready`: waited on or not, that
    // is no crash.
    stores.ready.catch(() => undefined);
    stores.link?.on('down', (err: Error) => storeEvents.emit('down', key, err));
    stores.link?.on('problem', (message: string, counted?: SkippedCount) => problems.report(message, counted));
    stores.link?.on('ready', () => storeEvents.emit('up', key));
    return stores;
  };
}

/** The registry's key of a host's store settings (other settings at a redeploy open new stores). */
export function hostStoresKey({ settings }: HostStoreSettings): string {
  return settingsKey(settings);
}

export function openServerStores(settings: StoreSettings, problem: StoreProblemReporter): ServerStores {
  if (settings.kind === 'file') {
    const journal = fileJournal(settings, 'server', problem);
    return {
      settings,
      registrationStore: new FileRegistrationStore(journal),
      observationStore: new FileObservationStore(journal),
      securityStore: new FileSecurityStore(journal),
      dtlsSessions: reported(new FileDtlsSessionStore(journal), problem),
      firmwareJobs: new FileRecordStore<FirmwareJobRecord>(journal, 'firmware-jobs', (record) => record.id),
      // A held Write may carry a device's keys (/0/x/5): sealed like the credentials.
      queuedRequests: new FileRecordStore<QueuedRequestRecord>(journal, 'queued-requests', (record) => record.id, true),
      ...fileLife(journal, Promise.resolve()),
    };
  }
  if (settings.kind === 'redis') {
    const link = redisLink(settings, problem);
    // Per instance: an instance resumes its own jobs when it starts again, never those another one runs.
    const firmwareJobs = new RedisRecordStore<FirmwareJobRecord>(
      link,
      `firmware-jobs:${link.instanceId}`,
      (record) => record.id,
    );
    // Held by the instance the device talks to (a request from another one is forwarded there first).
    const queuedRequests = new RedisRecordStore<QueuedRequestRecord>(
      link,
      `queued-requests:${link.instanceId}`,
      (record) => record.id,
      true,
    );
    const registrationStore = new RedisRegistrationStore(link);
    const observationStore = new RedisObservationStore(link);
    const securityStore = new RedisSecurityStore(link);
    const dtlsSessions = reported(new RedisDtlsSessionStore(link), problem);
    const load = () =>
      Promise.all([
        registrationStore.load(),
        observationStore.load(),
        securityStore.load(),
        dtlsSessions.load(),
        firmwareJobs.load(),
        queuedRequests.load(),
      ]);
    return {
      settings,
      registrationStore,
      observationStore,
      securityStore,
      dtlsSessions,
      firmwareJobs,
      queuedRequests,
      ...redisLife(link, load, `(${settings.redisPrefix}, instance ${link.instanceId})`),
    };
  }
  return {
    settings,
    registrationStore: new MemoryRegistrationStore(),
    observationStore: new MemoryObservationStore(),
    securityStore: new MemorySecurityStore(),
    dtlsSessions: new MemoryDtlsSessionStore(),
    firmwareJobs: new MemoryFirmwareJobStore(),
    queuedRequests: new MemoryRecordStore<QueuedRequestRecord>((record) => record.id),
    ...MEMORY_LIFE,
  };
}

export function openBootstrapStores(settings: StoreSettings, problem: StoreProblemReporter): BootstrapStores {
  if (settings.kind === 'file') {
    const journal = fileJournal(settings, 'bootstrap', problem);
    const configStore = new FileBootstrapConfigStore(journal);
    return {
      settings,
      configStore,
      securityStore: new FileSecurityStore(journal),
      dtlsSessions: reported(new FileDtlsSessionStore(journal), problem),
      ...fileLife(
        journal,
        configStore.restore().then((problems) => problems.forEach((message) => problem(message))),
      ),
    };
  }
  if (settings.kind === 'redis') {
    const link = redisLink({ ...settings, redisPrefix: `${settings.redisPrefix ?? 'lwm2m:'}bs:` }, problem);
    const configStore = new RedisBootstrapConfigStore(link);
    const securityStore = new RedisSecurityStore(link);
    const dtlsSessions = reported(new RedisDtlsSessionStore(link), problem);
    const load = async () => {
      for (const message of await configStore.load()) problem(message);
      await Promise.all([securityStore.load(), dtlsSessions.load()]);
    };
    return { settings, configStore, securityStore, dtlsSessions, ...redisLife(link, load, '') };
  }
  return {
    settings,
    configStore: new MemoryBootstrapConfigStore(),
    securityStore: new MemorySecurityStore(),
    dtlsSessions: new MemoryDtlsSessionStore(),
    ...MEMORY_LIFE,
  };
}

type StoresLife = Omit<PersistentStores, 'settings'>;

const MEMORY_LIFE: StoresLife = { ready: Promise.resolve(), close: async () => undefined, describe: 'memory' };

function fileLife(journal: Journal, ready: Promise<void>): StoresLife {
  return { ready, close: () => journal.close(), describe: `file ${journal.path}` };
}

/** Read at start and again after every outage (each retried until it works: see RedisLink.open); closed with the link. */
function redisLife(link: RedisLink, load: () => Promise<unknown>, detail: string): StoresLife {
  return {
    link,
    ready: link.open(load),
    close: () => link.close(),
    describe: `redis ${redactedUrl(link.options.url)}${detail ? ` ${detail}` : ''}`,
  };
}

/** A DTLS session store whose background write failures are reported, not lost. */
function reported<T extends { onError?: (err: Error) => void }>(store: T, problem: StoreProblemReporter): T {
  store.onError = (err) => problem(t('warnings.sessionStore', { error: err.message }));
  return store;
}

function fileJournal(settings: StoreSettings, name: string, problem: StoreProblemReporter): Journal {
  return openJournal(settings.dir!, name, {
    ...(settings.secret ? { secret: settings.secret } : {}),
    onSkipped: problem,
  });
}

function redisLink(settings: StoreSettings, problem: StoreProblemReporter): RedisLink {
  if (!settings.secret) problem(t('warnings.redisNoSecret'));
  return new RedisLink({
    url: settings.redisUrl!,
    prefix: settings.redisPrefix,
    instanceId: settings.instanceId,
    // Redis has no key file beside it: without a configured or Node-RED secret, every instance must share one.
    secrets: new SecretBox(settings.secret ?? 'node-red-contrib-lwm2m-server: no secret configured'),
  });
}

/** A Redis URL without its password, for status and logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
