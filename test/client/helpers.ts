import { once, type EventEmitter } from 'node:events';
import { CoapEndpoint } from '../../lib/coap/endpoint';
import type { IncomingResponse, OutgoingRequest } from '../../lib/coap/types';
import { Lwm2mClient, type Lwm2mClientOptions } from '../../lib/client';
import { Lwm2mServer, type Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import { UdpTransport } from '../../lib/transport/udp';
import type { PeerAddress } from '../../lib/transport/types';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Fast CoAP timing for loopback tests (a lost datagram is retried after ~100 ms). */
export const FAST_COAP = { ackTimeoutMs: 100, ackRandomFactor: 1.2, maxRetransmit: 3 };

/** Polls until `predicate` holds; throws after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The next `event` of `emitter` (its first argument), or a rejection after `timeoutMs`. */
export async function nextEvent<T = unknown>(emitter: EventEmitter, event: string, timeoutMs = 5000): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const args = await once(emitter, event, { signal: controller.signal });
    return args[0] as T;
  } catch (err) {
    if (controller.signal.aborted) throw new Error(`no '${event}' within ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Our server and clients for one test, all closed by `close()` (every socket, every timer: mocha runs
 * without --exit and would hang otherwise).
 */
export class Bench {
  server!: Lwm2mServer;
  port = 0;
  readonly clients: Lwm2mClient[] = [];
  private readonly closers: Array<() => Promise<void>> = [];

  async startServer(options: Partial<Lwm2mServerOptions> = {}): Promise<Lwm2mServer> {
    this.server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      lifetimeGraceSeconds: 0,
      coap: { ...FAST_COAP },
      ...options,
    });
    this.port = (await this.server.start()).port;
    return this.server;
  }

  get serverUri(): string {
    return `coap://127.0.0.1:${this.port}`;
  }

  client(options: Partial<Lwm2mClientOptions> & { endpointName: string }): Lwm2mClient {
    const client = new Lwm2mClient({
      serverUri: this.serverUri,
      bindAddress: '127.0.0.1',
      rebootDelayMs: 50,
      registerRetry: { initialDelayMs: 50, maxDelayMs: 200 },
      ...options,
      coap: { ...FAST_COAP, ...options.coap },
    });
    this.clients.push(client);
    return client;
  }

  /** A client, started and registered. */
  async registered(options: Partial<Lwm2mClientOptions> & { endpointName: string }): Promise<Lwm2mClient> {
    const client = this.client(options);
    await client.start();
    return client;
  }

  /** A raw CoAP endpoint (plays a server we did not write). */
  async rawEndpoint(): Promise<CoapEndpoint> {
    const endpoint = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0 }), FAST_COAP);
    await endpoint.start();
    this.closers.push(() => endpoint.close());
    return endpoint;
  }

  onClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.stop({ timeoutMs: 1000 }).catch(() => undefined)));
    for (const closer of this.closers.reverse()) await closer().catch(() => undefined);
    if (this.server) await this.server.stop();
  }
}

/** The client's socket as a peer. */
export function peerOf(client: Lwm2mClient): PeerAddress {
  const local = client.localAddress();
  if (local === undefined) throw new Error(`${client.endpointName} is not started`);
  return { address: '127.0.0.1', port: local.port };
}

/** One raw request to a client. */
export function ask(endpoint: CoapEndpoint, client: Lwm2mClient, request: OutgoingRequest): Promise<IncomingResponse> {
  return endpoint.request(peerOf(client), request);
}
