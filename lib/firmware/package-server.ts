/**
 * Firmware packages that devices pull from this server: CoAP GET below /fw (answered block-wise by the server's
 * own listeners, plain and DTLS) or HTTP GET/HEAD below /fw (a small node:http server of this Lwm2mServer,
 * started with the first HTTP package and closed when none is left). Every published package gets an
 * unguessable path, `/fw/<32 hex digits>`, that lives until the job that published it ends. One PackageServer
 * per Lwm2mServer (`packageServerFor`), since `/fw` is served once.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import type { Lwm2mServer } from '../server/lwm2m-server';

const OPAQUE = 42;

export interface PublishedPackage {
  /** The path on the server, `/fw/<token>`. */
  readonly path: string;
  /** Requests for it so far (one per block with Block2; GET and HEAD over HTTP). */
  readonly requests: number;
  /** Stops serving it (idempotent). */
  expire(): void;
}

/** A package served over HTTP, with where the HTTP server listens. */
export interface HttpPublishedPackage extends PublishedPackage {
  /** The HTTP server's bound address and port. */
  readonly address: string;
  readonly port: number;
}

export interface HttpPublishOptions {
  /** Port of the HTTP server when it is not running yet (0, the default: a free one). */
  port?: number;
  /** Address to bind it to when it is not running yet (default: the CoAP listener's address). */
  address?: string;
}

type Via = 'coap' | 'http';

interface Entry {
  image: Buffer;
  requests: number;
  via: Via;
}

export class PackageServer {
  static readonly SEGMENT = 'fw';
  private readonly packages = new Map<string, Entry>();
  private unserve?: () => void;
  private http?: { server: Server; listening: Promise<AddressInfo> };
  private httpClosing?: Promise<void>;

  constructor(private readonly server: Lwm2mServer) {}

  /** Serves `image` over CoAP under a new random path until `expire()`. */
  publish(image: Buffer): PublishedPackage {
    const published = this.add(image, 'coap');
    this.unserve ??= this.server.serve(PackageServer.SEGMENT, (request) => this.handle(request));
    return published;
  }

  /**
   * Serves `image` over HTTP under a new random path until `expire()`; starts the HTTP server first when none
   * runs (on `options.port`, bound like the CoAP listener).
   */
  async publishHttp(image: Buffer, options: HttpPublishOptions = {}): Promise<HttpPublishedPackage> {
    const published = this.add(image, 'http');
    let bound: AddressInfo;
    try {
      bound = await this.startHttp(options);
    } catch (err) {
      published.expire();
      throw err;
    }
    return Object.defineProperties(published, {
      address: { value: bound.address, enumerable: true },
      port: { value: bound.port, enumerable: true },
    }) as HttpPublishedPackage;
  }

  /** Packages being served. */
  get size(): number {
    return this.packages.size;
  }

  /** Whether the HTTP server runs (it closes when no HTTP package is left). */
  get httpRunning(): boolean {
    return this.http !== undefined;
  }

  /** Resolves once an HTTP server being closed has closed (at once when none is). */
  async httpClosed(): Promise<void> {
    await this.httpClosing;
  }

  private add(image: Buffer, via: Via): PublishedPackage {
    const token = randomBytes(16).toString('hex');
    const entry: Entry = { image, requests: 0, via };
    this.packages.set(token, entry);
    return {
      path: `/${PackageServer.SEGMENT}/${token}`,
      get requests() {
        return entry.requests;
      },
      expire: () => {
        if (this.packages.get(token) !== entry) return;
        this.packages.delete(token);
        if (this.has(via)) return;
        if (via === 'http') this.stopHttp();
        else if (this.unserve) {
          this.unserve();
          this.unserve = undefined;
        }
      },
    };
  }

  private has(via: Via): boolean {
    for (const entry of this.packages.values()) if (entry.via === via) return true;
    return false;
  }

  private handle(request: IncomingRequest): OutgoingResponse | undefined {
    if (request.pathSegments.length !== 2) return undefined;
    const entry = this.packages.get(request.pathSegments[1]);
    if (!entry || entry.via !== 'coap') return undefined;
    if (request.method !== 'GET') return { code: '4.05' };
    entry.requests++;
    return { code: '2.05', payload: entry.image, contentFormat: OPAQUE };
  }

  // ---- HTTP --------------------------------------------------------------------------------------

  private startHttp(options: HttpPublishOptions): Promise<AddressInfo> {
    if (this.http) return this.http.listening;
    const server = createServer((request, response) => this.handleHttp(request, response));
    const host = options.address ?? this.server.address?.address;
    const closing = this.httpClosing;
    const listening = (async () => {
      await closing; // a server closing on the same port first
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: options.port ?? 0, host: host === '' ? undefined : host }, () => {
          server.off('error', reject);
          server.on('error', () => undefined);
          resolve(server.address() as AddressInfo);
        });
      });
    })();
    listening.catch(() => {
      if (this.http?.server === server) this.http = undefined;
    });
    this.http = { server, listening };
    return listening;
  }

  /** Closes the HTTP server (once it has started listening), with its open connections. */
  private stopHttp(): void {
    const http = this.http;
    if (!http) return;
    this.http = undefined;
    const closed: Promise<void> = http.listening.then(
      () =>
        new Promise<void>((resolve) => {
          http.server.close(() => resolve());
          http.server.closeAllConnections();
        }),
      () => undefined,
    );
    this.httpClosing = closed;
    void closed.then(() => {
      if (this.httpClosing === closed) this.httpClosing = undefined;
    });
  }

  private handleHttp(request: IncomingMessage, response: ServerResponse): void {
    response.setHeader('Cache-Control', 'no-store');
    const path = (request.url ?? '').split('?')[0];
    const match = /^\/([^/]+)\/([0-9a-f]{32})$/.exec(path);
    const entry = match && match[1] === PackageServer.SEGMENT ? this.packages.get(match[2]) : undefined;
    if (!entry || entry.via !== 'http') {
      response.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
      response.end(request.method === 'HEAD' ? undefined : 'not found\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 });
      response.end();
      return;
    }
    entry.requests++;
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': entry.image.length });
    response.end(request.method === 'HEAD' ? undefined : entry.image);
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
