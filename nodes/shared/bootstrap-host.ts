import { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type { BootstrapServerOptions } from '../../lib/bootstrap/bootstrap-server';
import { ProvisioningConfigStore } from '../../lib/bootstrap/provisioning';
import type { Provisioning } from '../../lib/bootstrap/provisioning';
import { HostRegistry, listenerKey } from './host-registry';
import { hostStoresKey, openBootstrapStores, reportingStores } from './persistence';
import type { BootstrapStores, HostStoreSettings, ReportedStores, StoreSettings } from './persistence';
import type { StoreProblemLog } from '../../lib/store/problems';

export type BootstrapHostOptions = Partial<Omit<BootstrapServerOptions, 'configStore' | 'securityStore'>> &
  Pick<BootstrapServerOptions, 'address' | 'port' | 'plain'> & {
    /** Where configurations, device bootstrap credentials and DTLS sessions are kept (default: a file). */
    store?: StoreSettings;
  };

/** Kept for the life of the process (or until a redeploy changes the store settings). */
const hosts = new HostRegistry<BootstrapServer, BootstrapStores & ReportedStores, HostStoreSettings>(
  reportingStores(openBootstrapStores),
  hostStoresKey,
);

export function bootstrapHostKey(options: Pick<BootstrapServerOptions, 'address' | 'port' | 'plain' | 'dtls'>): string {
  return listenerKey(options, 5686);
}

/** The bootstrap server for these options, shared by config nodes on the same address and port. */
export function bootstrapServerFor(
  options: BootstrapHostOptions,
  configId: string,
  provisioning: Provisioning,
): BootstrapServer {
  const key = bootstrapHostKey(options);
  const { store, ...serverOptions } = options;
  return hosts.serverFor(
    key,
    configId,
    (stores) =>
      new BootstrapServer({
        ...serverOptions,
        configStore: new ProvisioningConfigStore(stores.configStore, provisioning),
        securityStore: stores.securityStore,
        ...(options.dtls
          ? { dtls: { ...options.dtls, sessionStore: stores.dtlsSessions, keepSessionsOnClose: true } }
          : {}),
      }),
    { key, settings: store ?? { kind: 'memory' } },
  );
}

/** What the bootstrap server's stores could not read back or write (undefined for one made elsewhere). */
export function bootstrapStoreProblemsOf(server: BootstrapServer): StoreProblemLog | undefined {
  return hosts.storesOf(bootstrapHostKey(server.options))?.problems;
}

export function acquireBootstrap(server: BootstrapServer, holderId: string): Promise<unknown> {
  return hosts.acquire(bootstrapHostKey(server.options), server, holderId);
}

export function releaseBootstrap(server: BootstrapServer, holderId: string): Promise<unknown> {
  return hosts.release(bootstrapHostKey(server.options), server, holderId);
}

export function forgetBootstrapConfig(server: BootstrapServer, configId: string): void {
  hosts.forgetConfig(bootstrapHostKey(server.options), configId);
}

export function bootstrapSettled(server: BootstrapServer): Promise<unknown> {
  return hosts.settled(bootstrapHostKey(server.options));
}

/** For tests: forget every bootstrap host (stopping their servers). */
export async function resetBootstrapHosts(): Promise<void> {
  await hosts.reset();
}
