/** What a host runs: a server with a socket that a redeploy stops and starts again. */
export interface Runnable {
  start(): Promise<unknown>;
  stop(): Promise<void>;
  readonly running: boolean;
}

/** Stores a host keeps: ready before its server starts, closed when other settings replace them. */
export interface HostStores {
  ready: Promise<unknown>;
  close(): Promise<void>;
}

interface Host<S extends Runnable, Stores extends HostStores> {
  /** Kept for the life of the process: a redeploy must not lose what they hold. */
  stores: Stores;
  /** The settings the stores were opened with. */
  storesKey: string;
  server?: S;
  /** Node ids holding the endpoint open. */
  holders: Set<string>;
  /** Config node ids that hold this server (started or not). */
  configs: Set<string>;
  /** Serialises start/stop so a redeploy's close and the next start never overlap on the port. */
  transition: Promise<unknown>;
  /** Ends a start still waiting for its stores (Redis not reachable) once nobody holds the host any more. */
  abandonWait?: () => void;
}

/**
 * One server per key (bind address and port), shared by every config node that names it, with stores that
 * outlive it. The first holder starts the server, the last one out stops it; a server whose config nodes have
 * all closed is replaced by the next config node, so a redeploy applies new options.
 */
export class HostRegistry<S extends Runnable, Stores extends HostStores, Settings = void> {
  private readonly hosts = new Map<string, Host<S, Stores>>();

  constructor(
    private readonly makeStores: (settings: Settings) => Stores,
    private readonly keyOf: (settings: Settings) => string = () => '',
  ) {}

  /**
   * The server under `key` for config node `configId`: the running one, or a new one made from the stores.
   * Stores opened with other settings are replaced when nobody uses the host (a redeploy that changed them).
   */
  serverFor(key: string, configId: string, create: (stores: Stores) => S, settings: Settings): S {
    const host = this.hostFor(key, settings);
    const unused = host.configs.size === 0 && host.holders.size === 0;
    host.configs.add(configId);
    if (unused && host.storesKey !== this.keyOf(settings) && !host.server?.running) {
      const old = host.stores;
      host.transition = host.transition.then(() => old.close()).catch(() => undefined);
      host.stores = this.makeStores(settings);
      host.storesKey = this.keyOf(settings);
      host.server = undefined;
    }
    if (!host.server || (unused && !host.server.running)) host.server = create(host.stores);
    return host.server;
  }

  /** The stores of the host under `key`, if it exists. */
  storesOf(key: string): Stores | undefined {
    return this.hosts.get(key)?.stores;
  }

  /** `holderId` needs the endpoint: the first holder starts it. */
  acquire(key: string, server: S, holderId: string): Promise<unknown> {
    const host = this.existing(key);
    host.holders.add(holderId);
    // The stores first: a Redis store is read before the server answers a device.
    const startIfHeld = () =>
      host.holders.size > 0
        ? this.storesReady(host).then((ready) => (ready && host.holders.size > 0 ? server.start() : undefined))
        : undefined;
    host.transition = host.transition.then(startIfHeld, startIfHeld);
    return host.transition;
  }

  /** `holderId` lets go: the last one out stops the endpoint (the stores stay). */
  release(key: string, server: S, holderId: string): Promise<unknown> {
    const host = this.existing(key);
    host.holders.delete(holderId);
    // A start waiting for Redis must not hold up a redeploy: nobody needs it now.
    if (host.holders.size === 0) host.abandonWait?.();
    const stopIfUnused = () => (host.holders.size === 0 ? server.stop() : undefined);
    host.transition = host.transition.then(stopIfUnused, stopIfUnused);
    return host.transition;
  }

  /** Config node `configId` closed: it no longer holds this server. */
  forgetConfig(key: string, configId: string): void {
    this.hosts.get(key)?.configs.delete(configId);
  }

  /** Waits for any start/stop in progress under `key`. */
  settled(key: string): Promise<unknown> {
    return (this.hosts.get(key)?.transition ?? Promise.resolve()).catch(() => undefined);
  }

  /** For tests: forget every host (stopping their servers). */
  async reset(): Promise<void> {
    for (const host of this.hosts.values()) {
      host.holders.clear();
      host.configs.clear();
      host.abandonWait?.();
      await host.transition.catch(() => undefined);
      await host.server?.stop();
      await host.stores.close().catch(() => undefined);
    }
    this.hosts.clear();
  }

  private hostFor(key: string, settings: Settings): Host<S, Stores> {
    let host = this.hosts.get(key);
    if (!host) {
      host = {
        stores: this.makeStores(settings),
        storesKey: this.keyOf(settings),
        holders: new Set(),
        configs: new Set(),
        transition: Promise.resolve(),
      };
      this.hosts.set(key, host);
    }
    return host;
  }

  /** Resolves true once the stores are ready, false if the host is let go first. */
  private storesReady(host: Host<S, Stores>): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      host.abandonWait = () => resolve(false);
      host.stores.ready.then(() => resolve(true), reject);
    }).finally(() => (host.abandonWait = undefined));
  }

  private existing(key: string): Host<S, Stores> {
    const host = this.hosts.get(key);
    if (!host) throw new Error(`no server under ${key}`);
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
