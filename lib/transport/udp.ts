/** The plain UDP transport on node:dgram (dual-stack bind, buffer sizes, fast IP-literal lookup). */

import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { normaliseAddress, peerKey } from './peer';
import type { DatagramTransport, Peer, PeerAddress } from './types';

export interface UdpTransportOptions {
  /** Address to bind. Default `'::'` (dual-stack), falling back to `'0.0.0.0'` when IPv6 is unavailable. */
  address?: string;
  /** Port to bind; 0 (default) picks an ephemeral port. */
  port?: number;
  /**
   * An existing socket to use instead of creating one (bound or not; if not bound yet it is bound to
   * `address`/`port`). The transport owns it from then on and closes it in `close()`.
   */
  socket?: dgram.Socket;
  /** Socket errors (send failures, ICMP errors surfaced by the OS, ...). Never thrown. */
  onError?: (err: Error) => void;
  /** SO_RCVBUF / SO_SNDBUF in bytes (set after binding; errors reported via onError). */
  recvBufferSize?: number;
  sendBufferSize?: number;
}

/** Resolves IP literals synchronously (saves a dns.lookup + nextTick per datagram sent). */
function fastLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const f = isDottedQuad(address) ? 4 : isIP(address);
  if (f !== 0) {
    callback(null, address, f);
    return;
  }
  dns.lookup(address, family as number, callback);
}

/** Regex-free strict IPv4 check (isIP is a regex; this runs for every datagram sent). */
export function isDottedQuad(a: string): boolean {
  const n = a.length;
  if (n < 7 || n > 15) return false;
  let dots = 0;
  let octet = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return false;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return false; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return false;
    } else return false;
  }
  return dots === 3 && digits > 0;
}

/** Errors from binding `::` that mean "no IPv6 here": fall back to IPv4. */
const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT', 'EINVAL', 'ENOTSUP']);

function noop(): void {}

/** Plain UDP transport over one dgram socket. */
export class UdpTransport implements DatagramTransport {
  /** Receives socket errors; replace freely. Never thrown out of an event handler. */
  onError: (err: Error) => void;
  private socket: dgram.Socket | undefined;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private startPromise: Promise<PeerAddress> | undefined;
  private closePromise: Promise<void> | undefined;
  private v6 = false;
  private bound: PeerAddress | undefined;
  private closing = false;

  constructor(private readonly options: UdpTransportOptions = {}) {
    this.onError = options.onError ?? noop;
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  start(): Promise<PeerAddress> {
    if (this.closing) return Promise.reject(new Error('transport closed'));
    if (this.startPromise === undefined) this.startPromise = this.doStart();
    return this.startPromise;
  }

  localAddress(): PeerAddress | undefined {
    return this.bound;
  }

  /** The underlying socket (after start), e.g. for multicast membership. */
  get rawSocket(): dgram.Socket | undefined {
    return this.socket;
  }

  send(data: Buffer, peer: PeerAddress): void {
    const s = this.socket;
    if (s === undefined || this.closing) return;
    let address = peer.address;
    // An IPv4 peer through a dual-stack IPv6 socket must be addressed as IPv4-mapped.
    if (this.v6 && address.indexOf(':') < 0) address = '::ffff:' + address;
    try {
      s.send(data, peer.port, address);
    } catch (err) {
      this.reportError(err);
    }
  }

  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.closing = true;
    this.closePromise = (async () => {
      if (this.startPromise !== undefined) {
        try {
          await this.startPromise;
        } catch {
          // never bound: nothing to close
        }
      }
      const s = this.socket;
      this.socket = undefined;
      if (s === undefined) return;
      await new Promise<void>((resolve) => {
        try {
          s.close(() => resolve());
        } catch {
          resolve(); // already closed
        }
      });
      s.removeAllListeners('message');
    })();
    return this.closePromise;
  }

  private async doStart(): Promise<PeerAddress> {
    const port = this.options.port ?? 0;
    const given = this.options.socket;
    if (given !== undefined) {
      let addr: { address: string; port: number } | undefined;
      try {
        addr = given.address();
      } catch {
        addr = undefined; // not bound yet
      }
      if (addr === undefined) {
        await new Promise<void>((resolve, reject) => {
          const onErr = (e: Error) => reject(e);
          given.once('error', onErr);
          given.bind({ port, address: this.options.address }, () => {
            given.removeListener('error', onErr);
            resolve();
          });
        });
      }
      return this.attach(given);
    }
    const address = this.options.address ?? '::';
    const family = isIP(address);
    if (family === 4) return this.attach(await this.bind('udp4', address, port, false));
    if (family === 6) {
      try {
        return this.attach(await this.bind('udp6', address, port, address !== '::'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (address === '::' && code !== undefined && NO_IPV6.has(code)) {
          return this.attach(await this.bind('udp4', '0.0.0.0', port, false));
        }
        throw err;
      }
    }
    // A host name: let dns decide the family.
    const looked = await dns.promises.lookup(address);
    return this.attach(await this.bind(looked.family === 6 ? 'udp6' : 'udp4', looked.address, port, true));
  }

  private bind(type: 'udp4' | 'udp6', address: string, port: number, ipv6Only: boolean): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({
        type,
        ipv6Only: type === 'udp6' ? ipv6Only : undefined,
        lookup: fastLookup as unknown as dgram.SocketOptions['lookup'],
      });
      const onError = (err: Error) => {
        s.removeListener('listening', onListening);
        try {
          s.close();
        } catch {
          // not running
        }
        reject(err);
      };
      const onListening = () => {
        s.removeListener('error', onError);
        resolve(s);
      };
      s.once('error', onError);
      s.once('listening', onListening);
      s.bind({ port, address, exclusive: true });
    });
  }

  private attach(s: dgram.Socket): PeerAddress {
    const a = s.address();
    this.v6 = a.family === 'IPv6' || (a.family as unknown) === 6;
    this.socket = s;
    this.bound = { address: normaliseAddress(a.address), port: a.port };
    s.on('message', this.onMessage);
    s.on('error', (err) => this.reportError(err));
    try {
      if (this.options.recvBufferSize) s.setRecvBufferSize(this.options.recvBufferSize);
      if (this.options.sendBufferSize) s.setSendBufferSize(this.options.sendBufferSize);
    } catch (err) {
      this.reportError(err);
    }
    if (this.closing) {
      // close() was called while binding: it awaits startPromise and then closes this socket.
    }
    return this.bound;
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const listener = this.listener;
    if (listener === undefined) return;
    let address = rinfo.address;
    if (this.v6) address = normaliseAddress(address);
    const port = rinfo.port;
    try {
      listener(msg, { address, port, key: peerKey(address, port) });
    } catch (err) {
      this.reportError(err);
    }
  };

  private reportError(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // an error handler that throws must not take the socket down
    }
  }
}
