// The store factory: from where state is to be kept (memory, a file, Redis), every store a server or a bootstrap
// server needs, with their life (ready, close). The Node-RED nodes open theirs here; so can a user of the library.
import type { BootstrapConfigStore } from '../bootstrap/config';
import { MemoryBootstrapConfigStore } from '../bootstrap/config';
import type { DtlsSessionStore } from '../dtls/session-store';
import { MemoryDtlsSessionStore } from '../dtls/session-store';
import type { FirmwareJobRecord, FirmwareJobStore } from '../firmware/store';
import { MemoryFirmwareJobStore } from '../firmware/store';
import { MemorySecurityStore } from '../server/memory-security-store';
import { MemoryObservationStore, MemoryRecordStore, MemoryRegistrationStore } from '../server/memory-stores';
import type { QueuedRequestRecord, QueuedRequestStore } from '../server/queue-mode';
import type { SecurityStore } from '../server/security';
import type { ObservationStore, RegistrationStore } from '../server/stores';
import {
  FileBootstrapConfigStore,
  FileDtlsSessionStore,
  FileObservationStore,
  FileRecordStore,
  FileRegistrationStore,
  FileSecurityStore,
  openJournal,
} from './file';
import type { Journal } from './file/journal';
import type { SkippedCount } from './problems';
import {
  RedisBootstrapConfigStore,
  RedisDtlsSessionStore,
  RedisLink,
  RedisObservationStore,
  RedisRecordStore,
  RedisRegistrationStore,
  RedisSecurityStore,
} from './redis';
import { SecretBox } from './secret-box';

export type StoreKind = 'file' | 'memory' | 'redis';

/** Where a server (or bootstrap server) keeps its state. */
export interface StoreSettings {
  kind: StoreKind;
  /** file: the folder of the journal (`<dir>/server.journal`, `<dir>/bootstrap.journal`). */
  dir?: string;
  /**
   * Seals secrets in files and in Redis. file: without it, a random key is generated once into `<dir>/store.key`;
   * redis: every instance must be given the same one (without it, a built-in one is used, which protects nothing).
   */
  secret?: string;
  /** redis: redis://[user:password@]host:port[/db] (rediss:// for TLS); default redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** redis: prefix of every key and channel (default 'lwm2m:'); a bootstrap server adds 'bs:'. */
  redisPrefix?: string;
  /** redis: this instance, stable across its restarts (default: a random id). */
  instanceId?: string;
}

/** The stores of one server, and their life: ready before the server starts, closed when done with. */
export interface PersistentStores {
  settings: StoreSettings;
  /** Resolves once the stores hold what was saved (Redis: once connected and read). */
  ready: Promise<void>;
  close(): Promise<void>;
  /** Redis: the link (the cluster bus of the server's `cluster` option, status events). */
  link?: RedisLink;
  /** Short words for a status and a log ('memory', 'file <path>', 'redis <url> ...'). */
  describe: string;
}

/**
 * Every store an Lwm2mServer needs. Its options take them as `registrationStore`, `observationStore`,
 * `securityStore`, `queuedRequestStore`, `cluster: link` (Redis), and `dtls.sessionStore: dtlsSessions`; a
 * firmware job takes `firmwareJobs` as its record store.
 */
export interface ServerStores extends PersistentStores {
  registrationStore: RegistrationStore;
  observationStore: ObservationStore;
  securityStore: SecurityStore;
  dtlsSessions: DtlsSessionStore;
  /** Records of running firmware jobs: what a restart interrupted is resumed from them. */
  firmwareJobs: FirmwareJobStore;
  /** Requests held for sleeping devices: they still go out after a restart. */
  queuedRequests: QueuedRequestStore;
}

/** Every store a BootstrapServer needs (`configStore`, `securityStore`, `dtls.sessionStore: dtlsSessions`). */
export interface BootstrapStores extends PersistentStores {
  configStore: BootstrapConfigStore;
  securityStore: SecurityStore;
  dtlsSessions: DtlsSessionStore;
}

/** Reports what could not be read back (counted, when the store counted it) or written, without stopping anything. */
export type StoreProblemReporter = (message: string, counted?: SkippedCount) => void;

/** What the factory says in its own words (the Node-RED nodes give theirs, translated). */
export interface StoreMessages {
  /** A DTLS session store failed to write in the background. */
  sessionStoreFailed(error: string): string;
  /** A Redis store was given no secret. */
  redisNoSecret(): string;
}

export interface StoreFactoryOptions {
  /** Told each problem (default: none told; a Redis link also emits 'problem'). */
  onProblem?: StoreProblemReporter;
  messages?: StoreMessages;
}

const MESSAGES: StoreMessages = {
  sessionStoreFailed: (error) => `DTLS session store: ${error}`,
  redisNoSecret: () =>
    'Redis store: no secret to encrypt device keys with (give the same secret to every instance): a built-in ' +
    'one is used, which protects nothing',
};

export function openServerStores(settings: StoreSettings, options: StoreFactoryOptions = {}): ServerStores {
  const problem = options.onProblem ?? (() => undefined);
  const messages = options.messages ?? MESSAGES;
  if (settings.kind === 'file') {
    const journal = fileJournal(settings, 'server', problem);
    return {
      settings,
      registrationStore: new FileRegistrationStore(journal),
      observationStore: new FileObservationStore(journal),
      securityStore: new FileSecurityStore(journal),
      dtlsSessions: reported(new FileDtlsSessionStore(journal), problem, messages),
      firmwareJobs: new FileRecordStore<FirmwareJobRecord>(journal, 'firmware-jobs', (record) => record.id),
      // A held Write may carry a device's keys (/0/x/5): sealed like the credentials.
      queuedRequests: new FileRecordStore<QueuedRequestRecord>(journal, 'queued-requests', (record) => record.id, true),
      ...fileLife(journal, Promise.resolve()),
    };
  }
  if (settings.kind === 'redis') {
    const link = redisLink(settings, problem, messages);
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
    const dtlsSessions = reported(new RedisDtlsSessionStore(link), problem, messages);
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
      ...redisLife(link, load, `(${link.prefix}, instance ${link.instanceId})`),
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

export function openBootstrapStores(settings: StoreSettings, options: StoreFactoryOptions = {}): BootstrapStores {
  const problem = options.onProblem ?? (() => undefined);
  const messages = options.messages ?? MESSAGES;
  if (settings.kind === 'file') {
    const journal = fileJournal(settings, 'bootstrap', problem);
    const configStore = new FileBootstrapConfigStore(journal);
    return {
      settings,
      configStore,
      securityStore: new FileSecurityStore(journal),
      dtlsSessions: reported(new FileDtlsSessionStore(journal), problem, messages),
      ...fileLife(
        journal,
        configStore.restore().then((problems) => problems.forEach((message) => problem(message))),
      ),
    };
  }
  if (settings.kind === 'redis') {
    const link = redisLink({ ...settings, redisPrefix: `${settings.redisPrefix ?? 'lwm2m:'}bs:` }, problem, messages);
    const configStore = new RedisBootstrapConfigStore(link);
    const securityStore = new RedisSecurityStore(link);
    const dtlsSessions = reported(new RedisDtlsSessionStore(link), problem, messages);
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
function reported<T extends { onError?: (err: Error) => void }>(
  store: T,
  problem: StoreProblemReporter,
  messages: StoreMessages,
): T {
  store.onError = (err) => problem(messages.sessionStoreFailed(err.message));
  return store;
}

function fileJournal(settings: StoreSettings, name: string, problem: StoreProblemReporter): Journal {
  if (!settings.dir) throw new Error('a file store needs the folder to keep its journal in (`dir`)');
  return openJournal(settings.dir, name, {
    ...(settings.secret ? { secret: settings.secret } : {}),
    onSkipped: problem,
  });
}

function redisLink(settings: StoreSettings, problem: StoreProblemReporter, messages: StoreMessages): RedisLink {
  if (!settings.secret) problem(messages.redisNoSecret());
  return new RedisLink({
    url: settings.redisUrl ?? 'redis://127.0.0.1:6379',
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
