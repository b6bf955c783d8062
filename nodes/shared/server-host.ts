import type { ObjectModel } from '../../lib/model/object-model';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import { MemoryObservationStore, MemoryRegistrationStore } from '../../lib/store/memory';
import { MemoryDtlsSessionStore } from '../../lib/dtls';
import type { DtlsSessionStore } from '../../lib/dtls';
import { MemorySecurityStore } from '../../lib/store/memory-security';
import type { SecurityStore } from '../../lib/server/security';
import type { ObservationStore, RegistrationStore } from '../../lib/server/stores';

export type HostOptions = Omit<
  Lwm2mServerOptions,
  'registrationStore' | 'observationStore' | 'securityStore' | 'model'
> & {
  model: ObjectModel;
};

interface Host {
  key: string;
  /** Kept for the life of the process: a redeploy must not lose registrations or observations. */
  registrationStore: RegistrationStore;
  observationStore: ObservationStore;
  /** Device credentials added from flows or files: a redeploy must not forget them either. */
  securityStore: SecurityStore;
  /** DTLS sessions handed from one listener to the next: devices do not handshake again after a redeploy. */
  dtlsSessions: DtlsSessionStore;
  server?: Lwm2mServer;
  /** Node ids holding the endpoint open. */
  holders: Set<string>;
  /** Config node ids that hold this server (started or not). */
  configs: Set<string>;
  /** Serialises start/stop so a redeploy's close and the next start never overlap on the port. */
  transition: Promise<unknown>;
}

const hosts = new Map<string, Host>();

/**
 * One LwM2M server per bind address and port, shared by every config node that names them: the plain
 * port, or the DTLS port when plain CoAP is off.
 */
export function hostKey(options: Pick<Lwm2mServerOptions, 'address' | 'port' | 'plain' | 'dtls'>): string {
  return options.plain || !options.dtls
    ? `${options.address}|${options.port}`
    : `${options.address}|s${options.dtls.port ?? 5684}`;
}

function hostFor(key: string): Host {
  let host = hosts.get(key);
  if (!host) {
    host = {
      key,
      registrationStore: new MemoryRegistrationStore(),
      observationStore: new MemoryObservationStore(),
      securityStore: new MemorySecurityStore(),
      dtlsSessions: new MemoryDtlsSessionStore(),
      holders: new Set(),
      configs: new Set(),
      transition: Promise.resolve(),
    };
    hosts.set(key, host);
  }
  return host;
}

/**
 * The server for these options (created, not started) for config node `configId`. Two config nodes
 * with the same address and port get the same server; the first one's options apply while either
 * exists. A server whose config nodes have all closed is replaced, so a redeploy applies new options.
 */
export function serverFor(options: HostOptions, configId: string): Lwm2mServer {
  const host = hostFor(hostKey(options));
  const unused = host.configs.size === 0 && host.holders.size === 0;
  host.configs.add(configId);
  if (!host.server || (unused && !host.server.running)) {
    host.server = new Lwm2mServer({
      ...options,
      registrationStore: host.registrationStore,
      observationStore: host.observationStore,
      securityStore: host.securityStore,
      ...(options.dtls
        ? { dtls: { ...options.dtls, sessionStore: host.dtlsSessions, keepSessionsOnClose: true } }
        : {}),
    });
  }
  return host.server;
}

/** `holderId` needs the endpoint: the first holder starts it. */
export function acquire(server: Lwm2mServer, holderId: string): Promise<unknown> {
  const host = hostFor(hostKey(server.options));
  host.holders.add(holderId);
  host.transition = host.transition.then(
    () => (host.holders.size > 0 ? server.start() : undefined),
    () => (host.holders.size > 0 ? server.start() : undefined),
  );
  return host.transition;
}

/** `holderId` lets go: the last one out stops the endpoint (the stores stay). */
export function release(server: Lwm2mServer, holderId: string): Promise<unknown> {
  const host = hostFor(hostKey(server.options));
  host.holders.delete(holderId);
  const stopIfUnused = () => (host.holders.size === 0 ? server.stop() : undefined);
  host.transition = host.transition.then(stopIfUnused, stopIfUnused);
  return host.transition;
}

/** Config node `configId` closed: it no longer holds this server. */
export function forgetConfig(server: Lwm2mServer, configId: string): void {
  hostFor(hostKey(server.options)).configs.delete(configId);
}

/** Waits for any start/stop in progress on this server's address. */
export function settled(server: Lwm2mServer): Promise<unknown> {
  return hostFor(hostKey(server.options)).transition.catch(() => undefined);
}

/** For tests: forget every host (stopping their servers). */
export async function resetHosts(): Promise<void> {
  for (const host of hosts.values()) {
    host.holders.clear();
    host.configs.clear();
    await host.transition.catch(() => undefined);
    await host.server?.stop();
  }
  hosts.clear();
}
