/** What a host runs: a server with a socket that a redeploy stops and starts again. */
export interface Runnable {
  start(): Promise<unknown>;
  stop(): Promise<void>;
  readonly running: boolean;
}

interface Host<S extends Runnable, Stores> {
  /** Kept for the life of the process: a redeploy must not lose what they hold. */
  stores: Stores;
  server?: S;
  /** Node ids holding the endpoint open. */
  holders: Set<string>;
  /** Config node ids that hold this server (started or not). */
  configs: Set<string>;
  /** Serialises start/stop so a redeploy's close and the next start never overlap on the port. */
  transition: Promise<unknown>;
}

/**
 * One server per key (bind address and port), shared by every config node that names it, with stores that
 * outlive it. The first holder starts the server, the last one out stops it; a server whose config nodes have
 * all closed is replaced by the next config node, so a redeploy applies new options.
 */
export class HostRegistry<S extends Runnable, Stores> {
  private readonly hosts = new Map<string, Host<S, Stores>>();

  constructor(private readonly makeStores: () => Stores) {}

  /** The server under `key` for config node `configId`: the running one, or a new one made from the stores. */
  serverFor(key: string, configId: string, create: (stores: Stores) => S): S {
    const host = this.hostFor(key);
    const unused = host.configs.size === 0 && host.holders.size === 0;
    host.configs.add(configId);
    if (!host.server || (unused && !host.server.running)) host.server = create(host.stores);
    return host.server;
  }

  /** `holderId` needs the endpoint: the first holder starts it. */
  acquire(key: string, server: S, holderId: string): Promise<unknown> {
    const host = this.hostFor(key);
    host.holders.add(holderId);
    const startIfHeld = () => (host.holders.size > 0 ? server.start() : undefined);
    host.transition = host.transition.then(startIfHeld, startIfHeld);
    return host.transition;
  }

  /** `holderId` lets go: the last one out stops the endpoint (the stores stay). */
  release(key: string, server: S, holderId: string): Promise<unknown> {
    const host = this.hostFor(key);
    host.holders.delete(holderId);
    const stopIfUnused = () => (host.holders.size === 0 ? server.stop() : undefined);
    host.transition = host.transition.then(stopIfUnused, stopIfUnused);
    return host.transition;
  }

  /** Config node `configId` closed: it no longer holds this server. */
  forgetConfig(key: string, configId: string): void {
    this.hostFor(key).configs.delete(configId);
  }

  /** Waits for any start/stop in progress under `key`. */
  settled(key: string): Promise<unknown> {
    return this.hostFor(key).transition.catch(() => undefined);
  }

  /** For tests: forget every host (stopping their servers). */
  async reset(): Promise<void> {
    for (const host of this.hosts.values()) {
      host.holders.clear();
      host.configs.clear();
      await host.transition.catch(() => undefined);
      await host.server?.stop();
    }
    this.hosts.clear();
  }

  private hostFor(key: string): Host<S, Stores> {
    let host = this.hosts.get(key);
    if (!host) {
      host = { stores: this.makeStores(), holders: new Set(), configs: new Set(), transition: Promise.resolve() };
      this.hosts.set(key, host);
    }
    return host;
  }
}

/** The key of a server's listeners: its plain port, or its DTLS port when plain CoAP is off. */
export function listenerKey(
  options: { address: string; port: number; plain: boolean; dtls?: { port?: number } },
  defaultSecurePort: number,
): string {
  return options.plain || !options.dtls
    ? `${options.address}|${options.port}`
    : `${options.address}|s${options.dtls.port ?? defaultSecurePort}`;
}
