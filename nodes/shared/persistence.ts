// The Node-RED side of the stores: a config node's fields as store settings (Node-RED's user directory and credential
// secret), the stores of each host opened through the library's factory (lib/store/factory.ts) with translated
// messages, their problems kept, and Redis going and coming told to the config nodes.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import path from 'node:path';
import {
  openBootstrapStores as openLibBootstrapStores,
  openServerStores as openLibServerStores,
} from '../../lib/store/factory';
import type {
  BootstrapStores,
  PersistentStores,
  ServerStores,
  StoreKind,
  StoreMessages,
  StoreProblemReporter,
  StoreSettings,
} from '../../lib/store/factory';
import { safeFileName } from '../../lib/store/file';
import { StoreProblemLog } from '../../lib/store/problems';
import type { SkippedCount } from '../../lib/store/problems';
import type { NodeAPI } from './node-red';
import { t } from './i18n';

// The factory's types and words, under the names the nodes have always used.
export type {
  BootstrapStores,
  PersistentStores,
  ServerStores,
  StoreKind,
  StoreProblemReporter,
  StoreSettings,
} from '../../lib/store/factory';
export { redactedUrl } from '../../lib/store/factory';

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

/** The factory's messages in the user's language. */
const MESSAGES: StoreMessages = {
  sessionStoreFailed: (error) => t('warnings.sessionStore', { error }),
  redisNoSecret: () => t('warnings.redisNoSecret'),
};

export function openServerStores(settings: StoreSettings, problem: StoreProblemReporter): ServerStores {
  return openLibServerStores(settings, { onProblem: problem, messages: MESSAGES });
}

export function openBootstrapStores(settings: StoreSettings, problem: StoreProblemReporter): BootstrapStores {
  return openLibBootstrapStores(settings, { onProblem: problem, messages: MESSAGES });
}
