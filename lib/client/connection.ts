/**
 * The client's link to its LwM2M server: the account in use (URI, PSK, Server object instance) and the
 * socket to it, a CoapEndpoint over UDP, DTLS or a transport of the user's, opened and closed on demand.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CoapEndpoint } from '../coap/endpoint';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import type { ServerAccount } from './bootstrap';
import { DtlsClientTransport, type PskCredentials } from './dtls-transport';
import { NotifierTransport } from './notifier-transport';
import type { Lwm2mClientOptions } from './options';

/** Where the socket goes: a server URI, with the PSK for a coaps:// one. */
export interface ConnectionTarget {
  uri: string;
  psk?: PskCredentials;
}

/** What the connection hands to the rest of the client. */
export interface ConnectionHandlers {
  /** A request from the server (or the Bootstrap-Server). */
  handleRequest(request: IncomingRequest): Promise<OutgoingResponse>;
  /** The server answered a notification with RST. */
  notificationReset(peer: Peer, token: Buffer): void;
  error(err: Error): void;
}

export class ServerConnection {
  /** The LwM2M server the device talks to: options.serverUri / psk, or the account a bootstrap provisioned. */
  target: ConnectionTarget;
  /** The Server object instance (/1/x) of the account in use. */
  serverInstanceId = 0;
  private _endpoint: CoapEndpoint | undefined;
  private _transport: NotifierTransport | undefined;
  private _serverPeer: PeerAddress | undefined;
  /** The URI the open endpoint talks to. */
  private _endpointUri: string | undefined;

  constructor(
    private readonly options: Lwm2mClientOptions,
    private readonly endpointName: string,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.target = { uri: options.serverUri, psk: options.psk };
  }

  /** The open CoAP endpoint, if any. */
  get endpoint(): CoapEndpoint | undefined {
    return this._endpoint;
  }

  /** The transport under the open endpoint (queue mode switches its receiving and sending). */
  get transport(): NotifierTransport | undefined {
    return this._transport;
  }

  /** The server's address (set once a socket has been opened). */
  get serverPeer(): PeerAddress {
    return this._serverPeer!;
  }

  get endpointUri(): string | undefined {
    return this._endpointUri;
  }

  requireEndpoint(): CoapEndpoint {
    if (this._endpoint === undefined) throw new Error(`${this.endpointName} is not started`);
    return this._endpoint;
  }

  /** The bound local address (after start). */
  localAddress(): PeerAddress | undefined {
    return this._transport?.localAddress();
  }

  /** Makes `account` (a bootstrap provisioned it, or found it in the Security / Server objects) the one in use. */
  useAccount(account: ServerAccount): void {
    this.target = { uri: account.uri, psk: account.psk };
    this.serverInstanceId = account.serverInstance;
  }

  /** Opens the socket to `target` (the LwM2M server in use, or the Bootstrap-Server). */
  async open(target: ConnectionTarget = this.target): Promise<void> {
    const psk = target.psk;
    const server = await resolveServer(target.uri, this.options.transport !== undefined || psk !== undefined);
    if (psk && !target.uri.startsWith('coaps:'))
      throw new RangeError(`server URI "${target.uri}": a PSK needs a coaps:// URI`);
    this._serverPeer = server;
    this._endpointUri = target.uri;
    const bindAddress = this.options.bindAddress ?? (isIP(server.address) === 6 ? '::' : '0.0.0.0');
    const local = { address: bindAddress, port: this.options.bindPort };
    const inner = this.options.transport?.(local) ?? (psk ? this.dtlsTransport(server, psk) : new UdpTransport(local));
    const coap = { maxBodySize: 16 * 1024 * 1024, ...this.options.coap };
    const endpoint = new CoapEndpoint((this._transport = new NotifierTransport(inner)), coap);
    const handlers = this.handlers;
    endpoint.onError = (err) => handlers.error(err instanceof Error ? err : new Error(String(err)));
    // the server answered a notification (CON or NON) with RST: it does not want that observation any more
    endpoint.onNotificationReset = (peer, token) => handlers.notificationReset(peer, token);
    endpoint.setRequestHandler((request) => handlers.handleRequest(request));
    this._endpoint = endpoint;
    try {
      await endpoint.start();
    } catch (err) {
      if (this._endpoint === endpoint) {
        this._endpoint = undefined;
        this._transport = undefined;
        this._endpointUri = undefined;
      }
      await endpoint.close().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    const endpoint = this._endpoint;
    this._endpoint = undefined;
    this._transport = undefined;
    this._endpointUri = undefined;
    if (endpoint !== undefined) await endpoint.close().catch(() => undefined);
  }

  /** No answer over DTLS: the server may have lost our session (a restart); a new handshake is the cure. */
  newDtlsSession(): void {
    const inner: DatagramTransport | undefined = this._transport?.inner;
    if (inner instanceof DtlsClientTransport) inner.newSession();
  }

  private dtlsTransport(server: PeerAddress, psk: PskCredentials): DtlsClientTransport {
    const transport = new DtlsClientTransport(server, psk);
    transport.onError = (err) => this.handlers.error(err);
    return transport;
  }
}

async function resolveServer(uri: string, customTransport: boolean): Promise<PeerAddress> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new RangeError(`invalid server URI "${uri}"`);
  }
  if (url.protocol !== 'coap:' && !(url.protocol === 'coaps:' && customTransport)) {
    throw new RangeError(`server URI "${uri}": only coap:// is supported (coaps:// needs a DTLS transport)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? (url.protocol === 'coaps:' ? 5684 : 5683) : Number(url.port);
  const address = isIP(host) !== 0 ? host : (await lookup(host)).address;
  return { address, port };
}
