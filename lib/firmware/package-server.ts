/**
 * Firmware packages that devices pull from this server (CoAP GET below /fw, answered block-wise by the
 * server). Every published package gets an unguessable path, `/fw/<32 hex digits>`, that lives until the job
 * that published it ends. One PackageServer per Lwm2mServer (`packageServerFor`), since `/fw` is served once.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import type { Lwm2mServer } from '../server/lwm2m-server';

const OPAQUE = 42;

export interface PublishedPackage {
  /** The path on the server, `/fw/<token>`. */
  readonly path: string;
  /** Requests for it so far (one per block with Block2). */
  readonly requests: number;
  /** Stops serving it (idempotent). */
  expire(): void;
}

interface Entry {
  image: Buffer;
  requests: number;
}

export class PackageServer {
  static readonly SEGMENT = 'fw';
  private readonly packages = new Map<string, Entry>();
  private unserve?: () => void;

  constructor(private readonly server: Lwm2mServer) {}

  /** Serves `image` under a new random path until `expire()`. */
  publish(image: Buffer): PublishedPackage {
    const token = randomBytes(16).toString('hex');
    const entry: Entry = { image, requests: 0 };
    this.packages.set(token, entry);
    this.unserve ??= this.server.serve(PackageServer.SEGMENT, (request) => this.handle(request));
    return {
      path: `/${PackageServer.SEGMENT}/${token}`,
      get requests() {
        return entry.requests;
      },
      expire: () => {
        if (this.packages.get(token) !== entry) return;
        this.packages.delete(token);
        if (this.packages.size === 0 && this.unserve) {
          this.unserve();
          this.unserve = undefined;
        }
      },
    };
  }

  /** Packages being served. */
  get size(): number {
    return this.packages.size;
  }

  private handle(request: IncomingRequest): OutgoingResponse | undefined {
    if (request.pathSegments.length !== 2) return undefined;
    const entry = this.packages.get(request.pathSegments[1]);
    if (!entry) return undefined;
    if (request.method !== 'GET') return { code: '4.05' };
    entry.requests++;
    return { code: '2.05', payload: entry.image, contentFormat: OPAQUE };
  }
}

const byServer = new WeakMap<Lwm2mServer, PackageServer>();

/** The package server of `server` (created on first use). */
export function packageServerFor(server: Lwm2mServer): PackageServer {
  let packages = byServer.get(server);
  if (!packages) {
    packages = new PackageServer(server);
    byServer.set(server, packages);
  }
  return packages;
}
