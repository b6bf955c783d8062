/**
 * Firmware packages that devices pull from this server: CoAP GET below /fw (answered block-wise by the server's
 * own listeners, plain and DTLS), HTTP GET/HEAD below /fw (a small node:http server of this Lwm2mServer,
 * started with the first HTTP package and closed when none is left), or the same over HTTPS (node:https, with
 * the certificate of the server's DTLS listener unless another is given). Every published package gets an
 * unguessable path, `/fw/<32 hex digits>`, that lives until the job that published it ends. One PackageServer
 * per Lwm2mServer (`packageServerFor`), since `/fw` is served once.
 */
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import type { Lwm2mServer } from '../server/lwm2m-server';

const OPAQUE = 42;

export interface PublishedPackage {
  /** The path on the server, `/fw/<token>`. */
  readonly path: string;
  /**
   * Requests for it the handler saw (over CoAP the first block of each download: later blocks come from the
   * endpoint's Block2 cache; GET and HEAD over HTTP).
   */
  readonly requests: number;
  /** Bytes sent so far (all downloads together: every Block2 block, every HTTP body byte written). */
  readonly sentBytes: number;
  /** Stops serving it (idempotent). */
  expire(): void;
}

/** A package served over HTTP, with where the HTTP server listens. */
export interface HttpPublishedPackage extends PublishedPackage {
  /** The HTTP server's bound address and port. */
  readonly address: string;
  readonly port: number;
}

export interface PublishOptions {
  /**
   * Told how far a download of the package has got: bytes sent of this download (up to the end of the last
   * Block2 block, or HTTP body bytes written) and the package size. Called often (every block): throttle.
   */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface HttpPublishOptions extends PublishOptions {
  /** Port of the HTTP server when it is not running yet (0, the default: a free one). */
  port?: number;
  /** Address to bind it to when it is not running yet (default: the CoAP listener's address). */
  address?: string;
}

/** A TLS certificate chain (leaf first; PEM text, possibly several blocks, or DER) and its private key. */
export interface TlsCertificate {
  chain: Array<string | Buffer>;
  privateKey: string | Buffer | KeyObject;
}

export interface HttpsPublishOptions extends HttpPublishOptions {
  /**
   * The HTTPS server's certificate when it is not running yet. Default: the certificate of the Lwm2mServer's
   * DTLS listener (`options.dtls.certificate`). Devices check it: its names must cover the host in the URI.
   */
  certificate?: TlsCertificate;
}

type Via = 'coap' | 'http' | 'https';
type HttpVia = 'http' | 'https';

interface Entry {
  image: Buffer;
  requests: number;
  sentBytes: number;
  via: Via;
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

/** HTTP bodies are written in slices of this size, so that progress can be told while the socket drains. */
const HTTP_SLICE = 64 * 1024;

/** The certificate and key as node:tls wants them (PEM text), from PEM or DER. */
export function tlsCredentials(certificate: TlsCertificate): { cert: string; key: string } {
  const certs: string[] = [];
  for (const item of certificate.chain) {
    const text = typeof item === 'string' ? item : item.toString('latin1');
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (blocks) certs.push(...blocks);
    else if (Buffer.isBuffer(item)) certs.push(new X509Certificate(item).toString());
    else throw new TypeError('a certificate of the chain is neither PEM nor DER');
  }
  if (certs.length === 0) throw new TypeError('the certificate chain is empty');
  const key = certificate.privateKey;
  let keyObject: KeyObject;
  if (typeof key === 'string' || (Buffer.isBuffer(key) && key.includes('-----BEGIN')))
    keyObject = createPrivateKey(key);
  else if (Buffer.isBuffer(key)) {
    try {
      keyObject = createPrivateKey({ key, format: 'der', type: 'pkcs8' });
    } catch {
      keyObject = createPrivateKey({ key, format: 'der', type: 'sec1' });
    }
  } else keyObject = key;
  return { cert: certs.join('\n'), key: keyObject.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

interface HttpListener {
  server: Server;
  listening: Promise<AddressInfo>;
}

export class PackageServer {
  static readonly SEGMENT = 'fw';
  private readonly packages = new Map<string, Entry>();
  private unserve?: () => void;
  private readonly listeners: Partial<Record<HttpVia, HttpListener>> = {};
  private readonly closing: Partial<Record<HttpVia, Promise<void>>> = {};

  constructor(private readonly server: Lwm2mServer) {}

  /** Serves `image` over CoAP under a new random path until `expire()`. */
  publish(image: Buffer, options: PublishOptions = {}): PublishedPackage {
    const published = this.add(image, 'coap', options);
    this.unserve ??= this.server.serve(PackageServer.SEGMENT, (request) => this.handle(request));
    return published;
  }

  /**
   * Serves `image` over HTTP under a new random path until `expire()`; starts the HTTP server first when none
   * runs (on `options.port`, bound like the CoAP listener).
   */
  publishHttp(image: Buffer, options: HttpPublishOptions = {}): Promise<HttpPublishedPackage> {
    return this.publishOver('http', image, options);
  }

  /**
   * Serves `image` over HTTPS under a new random path until `expire()`; starts the HTTPS server first when
   * none runs (on `options.port`, bound like the CoAP listener, with `options.certificate` or the DTLS
   * listener's). A running HTTPS server is reused with the certificate it has.
   */
  publishHttps(image: Buffer, options: HttpsPublishOptions = {}): Promise<HttpPublishedPackage> {
    return this.publishOver('https', image, options);
  }

  /** Packages being served. */
  get size(): number {
    return this.packages.size;
  }

  /** Whether the HTTP server runs (it closes when no HTTP package is left). */
  get httpRunning(): boolean {
    return this.listeners.http !== undefined;
  }

  /** Whether the HTTPS server runs (it closes when no HTTPS package is left). */
  get httpsRunning(): boolean {
    return this.listeners.https !== undefined;
  }

  /** Resolves once an HTTP server being closed has closed (at once when none is). */
  async httpClosed(): Promise<void> {
    await this.closing.http;
  }

  /** Resolves once an HTTPS server being closed has closed (at once when none is). */
  async httpsClosed(): Promise<void> {
    await this.closing.https;
  }

  private async publishOver(via: HttpVia, image: Buffer, options: HttpsPublishOptions): Promise<HttpPublishedPackage> {
    const published = this.add(image, via, options);
    let bound: AddressInfo;
    try {
      bound = await this.startHttp(via, options);
    } catch (err) {
      published.expire();
      throw err;
    }
    return Object.defineProperties(published, {
      address: { value: bound.address, enumerable: true },
      port: { value: bound.port, enumerable: true },
    }) as HttpPublishedPackage;
  }

  private add(image: Buffer, via: Via, options: PublishOptions): PublishedPackage {
    const token = randomBytes(16).toString('hex');
    const entry: Entry = { image, requests: 0, sentBytes: 0, via };
    if (options.onProgress) entry.onProgress = options.onProgress;
    this.packages.set(token, entry);
    return {
      path: `/${PackageServer.SEGMENT}/${token}`,
      get requests() {
        return entry.requests;
      },
      get sentBytes() {
        return entry.sentBytes;
      },
      expire: () => {
        if (this.packages.get(token) !== entry) return;
        this.packages.delete(token);
        if (this.has(via)) return;
        if (via !== 'coap') this.stopHttp(via);
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
    // Every block served (the first here, the others from the endpoint's Block2 cache) is counted and told.
    const onProgress = (sent: number, total: number): void => {
      entry.sentBytes += sent - previous;
      previous = sent;
      entry.onProgress?.(sent, total);
    };
    let previous = 0;
    return { code: '2.05', payload: entry.image, contentFormat: OPAQUE, onProgress };
  }

  // ---- HTTP and HTTPS ----------------------------------------------------------------------------

  private startHttp(via: HttpVia, options: HttpsPublishOptions): Promise<AddressInfo> {
    const running = this.listeners[via];
    if (running) return running.listening;
    const handler = (request: IncomingMessage, response: ServerResponse): void =>
      this.handleHttp(via, request, response);
    let server: Server;
    if (via === 'https') {
      const certificate = options.certificate ?? this.server.options.dtls?.certificate;
      if (!certificate) {
        return Promise.reject(
          new Error('no certificate for HTTPS: give one, or set the certificate of the DTLS listener'),
        );
      }
      // A bad certificate or key throws here, before anything listens.
      server = createHttpsServer(tlsCredentials(certificate), handler) as unknown as Server;
    } else server = createServer(handler);
    const host = options.address ?? this.server.address?.address;
    const closing = this.closing[via];
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
      if (this.listeners[via]?.server === server) delete this.listeners[via];
    });
    // A failed TLS handshake (an untrusting client) is the client's business: it must not reach 'error'.
    server.on('tlsClientError', () => undefined);
    this.listeners[via] = { server, listening };
    return listening;
  }

  /** Closes the HTTP(S) server (once it has started listening), with its open connections. */
  private stopHttp(via: HttpVia): void {
    const http = this.listeners[via];
    if (!http) return;
    delete this.listeners[via];
    const closed: Promise<void> = http.listening.then(
      () =>
        new Promise<void>((resolve) => {
          http.server.close(() => resolve());
          http.server.closeAllConnections();
        }),
      () => undefined,
    );
    this.closing[via] = closed;
    void closed.then(() => {
      if (this.closing[via] === closed) delete this.closing[via];
    });
  }

  private handleHttp(via: HttpVia, request: IncomingMessage, response: ServerResponse): void {
    response.setHeader('Cache-Control', 'no-store');
    const path = (request.url ?? '').split('?')[0];
    const match = /^\/([^/]+)\/([0-9a-f]{32})$/.exec(path);
    const entry = match && match[1] === PackageServer.SEGMENT ? this.packages.get(match[2]) : undefined;
    if (!entry || entry.via !== via) {
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
    const image = entry.image;
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': image.length });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    // In slices, each after the previous one has drained: progress then follows what the peer takes.
    let offset = 0;
    const next = (): void => {
      if (response.destroyed) return;
      const end = Math.min(offset + HTTP_SLICE, image.length);
      const slice = image.subarray(offset, end);
      const last = end === image.length;
      const written = (): void => {
        entry.sentBytes += slice.length;
        offset = end;
        entry.onProgress?.(end, image.length);
      };
      if (last) {
        response.end(slice, written);
        return;
      }
      if (response.write(slice)) {
        written();
        setImmediate(next);
      } else {
        response.once('drain', () => {
          written();
          next();
        });
      }
    };
    next();
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
