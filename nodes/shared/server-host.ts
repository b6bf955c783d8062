import type { ObjectModel } from '../../lib/model/object-model';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import type { FirmwareJobStore } from '../../lib/firmware/store';
import { HostRegistry, listenerKey } from './host-registry';
import { hostStoresKey, openServerStores, reportingStores } from './persistence';
import type { HostStoreSettings, ReportedStores, ServerStores, StoreSettings } from './persistence';
import type { StoreProblemLog } from '../../lib/store/problems';

export type HostOptions = Omit<
  Lwm2mServerOptions,
  'registrationStore' | 'observationStore' | 'securityStore' | 'model' | 'cluster' | 'queuedRequestStore'
> & {
  model: ObjectModel;
  /** Where registrations, observations, credentials and DTLS sessions are kept (default: a file). */
  store?: StoreSettings;
};

const MEMORY: StoreSettings = { kind: 'memory' };

/**
 * Kept for the life of the process (or until a redeploy changes the store settings): a redeploy must lose
 * neither registrations, observations, credentials nor DTLS sessions.
 */
const hosts = new HostRegistry<Lwm2mServer, ServerStores & ReportedStores, HostStoreSettings>(
  reportingStores(openServerStores),
  hostStoresKey,
);

/**
 * One LwM2M server per bind address and port, shared by every config node that names them: the plain
 * port, or the DTLS port when plain CoAP is off.
 */
export function hostKey(options: Pick<Lwm2mServerOptions, 'address' | 'port' | 'plain' | 'dtls'>): string {
  return listenerKey(options, 5684);
}

/**
 * The server for these options (created, not started) for config node `configId`. Two config nodes
 * with the same address and port get the same server; the first one's options apply while either
 * exists. A server whose config nodes have all closed is replaced, so a redeploy applies new options.
 */
export function serverFor(options: HostOptions, configId: string): Lwm2mServer {
  const key = hostKey(options);
  const { store, ...serverOptions } = options;
  return hosts.serverFor(
    key,
    configId,
    (stores) =>
      new Lwm2mServer({
        ...serverOptions,
        registrationStore: stores.registrationStore,
        observationStore: stores.observationStore,
        securityStore: stores.securityStore,
        queuedRequestStore: stores.queuedRequests,
        ...(stores.link ? { cluster: stores.link } : {}),
        ...(options.dtls
          ? { dtls: { ...options.dtls, sessionStore: stores.dtlsSessions, keepSessionsOnClose: true } }
          : {}),
      }),
    { key, settings: store ?? MEMORY },
  );
}

/** Where firmware jobs of this server keep their records (undefined for a server made elsewhere, in tests). */
export function firmwareJobStoreOf(server: Lwm2mServer): FirmwareJobStore | undefined {
  return hosts.storesOf(hostKey(server.options))?.firmwareJobs;
}

/** How the server's state is kept, in words ('file /path', 'redis ...', 'memory'). */
export function storeDescription(server: Lwm2mServer): string | undefined {
  return hosts.storesOf(hostKey(server.options))?.describe;
}

/** What the server's stores could not read back or write (undefined for a server made elsewhere, in tests). */
export function storeProblemsOf(server: Lwm2mServer): StoreProblemLog | undefined {
  return hosts.storesOf(hostKey(server.options))?.problems;
}

/** `holderId` needs the endpoint: the first holder starts it. */
export function acquire(server: Lwm2mServer, holderId: string): Promise<unknown> {
  return hosts.acquire(hostKey(server.options), server, holderId);
}

/** `holderId` lets go: the last one out stops the endpoint (the stores stay). */
export function release(server: Lwm2mServer, holderId: string): Promise<unknown> {
  return hosts.release(hostKey(server.options), server, holderId);
}

/** Config node `configId` closed: it no longer holds this server. */
export function forgetConfig(server: Lwm2mServer, configId: string): void {
  hosts.forgetConfig(hostKey(server.options), configId);
}

/** Waits for any start/stop in progress on this server's address. */
export function settled(server: Lwm2mServer): Promise<unknown> {
  return hosts.settled(hostKey(server.options));
}

/** For tests: forget every host (stopping their servers). */
export async function resetHosts(): Promise<void> {
  await hosts.reset();
}
