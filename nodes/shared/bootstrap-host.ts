import { BootstrapServer } from '../../lib/bootstrap/bootstrap-server';
import type { BootstrapServerOptions } from '../../lib/bootstrap/bootstrap-server';
import { MemoryBootstrapConfigStore } from '../../lib/bootstrap/config';
import { ProvisioningConfigStore } from '../../lib/bootstrap/provisioning';
import type { Provisioning } from '../../lib/bootstrap/provisioning';
import { MemoryDtlsSessionStore } from '../../lib/dtls';
import type { DtlsSessionStore } from '../../lib/dtls';
import { MemorySecurityStore } from '../../lib/store/memory-security';
import { HostRegistry, listenerKey } from './host-registry';

export type BootstrapHostOptions = Partial<Omit<BootstrapServerOptions, 'configStore' | 'securityStore'>> &
  Pick<BootstrapServerOptions, 'address' | 'port' | 'plain'>;

/** Kept for the life of the process: configurations, device bootstrap credentials, DTLS sessions. */
interface BootstrapStores {
  configStore: MemoryBootstrapConfigStore;
  securityStore: MemorySecurityStore;
  dtlsSessions: DtlsSessionStore;
}

const hosts = new HostRegistry<BootstrapServer, BootstrapStores>(() => ({
  configStore: new MemoryBootstrapConfigStore(),
  securityStore: new MemorySecurityStore(),
  dtlsSessions: new MemoryDtlsSessionStore(),
}));

export function bootstrapHostKey(options: Pick<BootstrapServerOptions, 'address' | 'port' | 'plain' | 'dtls'>): string {
  return listenerKey(options, 5686);
}

/** The bootstrap server for these options, shared by config nodes on the same address and port. */
export function bootstrapServerFor(
  options: BootstrapHostOptions,
  configId: string,
  provisioning: Provisioning,
): BootstrapServer {
  return hosts.serverFor(
    bootstrapHostKey(options),
    configId,
    (stores) =>
      new BootstrapServer({
        ...options,
        configStore: new ProvisioningConfigStore(stores.configStore, provisioning),
        securityStore: stores.securityStore,
        ...(options.dtls
          ? { dtls: { ...options.dtls, sessionStore: stores.dtlsSessions, keepSessionsOnClose: true } }
          : {}),
      }),
  );
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
