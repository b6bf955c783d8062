/**
 * The device side of CoAP over DTLS with a pre-shared key, on node-dtls-client (a DTLS 1.2 client we did
 * not write: the simulator's DTLS is an independent check of our server's). One transport talks to one
 * server, as an LwM2M client does.
 */
import { isIP } from 'node:net';
import { dtls } from 'node-dtls-client';
import { toPeer } from '../transport/peer';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';

export interface PskCredentials {
  /** PSK identity (sent in the clear in the handshake). */
  identity: string;
  key: Buffer;
}

export interface DtlsClientTransportOptions {
  /** How long a handshake may take, all attempts together (default 30 s). */
  handshakeTimeoutMs?: number;
  /** Cipher suites to offer, IANA names (default: TLS_PSK_WITH_AES_128_CCM_8, the LwM2M mandatory one, first). */
  cipherSuites?: string[];
}

/**
 * node-dtls-client 1.1.1's socket, as much of it as we use. Its `close()` sends close_notify and then closes
 * the UDP socket, and throws (asynchronously, uncatchably) when that socket is already closed or the
 * handshake has not begun; `killConnection()` and `_isClosed` (JavaScript-private, pinned version) let a
 * socket be dropped in any state without that.
 */
interface DtlsSocket {
  on(event: 'connected' | 'close', listener: () => void): void;
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'error', listener: (err: Error) => void): void;
  once(event: 'close', listener: () => void): void;
  send(data: Buffer): void;
  close(callback?: () => void): void;
  killConnection(err?: Error): void;
  readonly _isClosed: boolean;
}

const DEFAULT_SUITES = [
  'TLS_PSK_WITH_AES_128_CCM_8',
  'TLS_PSK_WITH_AES_128_CBC_SHA256',
  'TLS_PSK_WITH_AES_128_GCM_SHA256',
];
/** Datagrams held while a handshake runs (CoAP retransmits anything lost beyond this). */
const MAX_PENDING = 32;

export class DtlsClientTransport implements DatagramTransport {
  /** Receives handshake failures and alerts; replace freely. */
  onError: (err: Error) => void = () => undefined;
  private readonly serverPeer: Peer;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private socket: DtlsSocket | undefined;
  private connected = false;
  private connecting: Promise<void> | undefined;
  private pending: Buffer[] = [];
  private closed = false;
  /** Handshakes completed, for tests and the simulator's statistics. */
  sessions = 0;

  constructor(
    server: PeerAddress,
    private readonly psk: PskCredentials,
    private readonly options: DtlsClientTransportOptions = {},
  ) {
    this.serverPeer = toPeer(server);
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  /** Resolves once the first handshake completed. */
  async start(): Promise<PeerAddress> {
    await this.connect();
    return this.localAddress();
  }

  /** The local port is node-dtls-client's own: not known here. */
  localAddress(): PeerAddress {
    return { address: isIP(this.serverPeer.address) === 6 ? '::' : '0.0.0.0', port: 0 };
  }

  send(data: Buffer, peer: PeerAddress): void {
    if (this.closed || peer.port !== this.serverPeer.port || toPeer(peer).address !== this.serverPeer.address) return;
    if (this.connected && this.socket && !this.socket._isClosed) {
      this.socket.send(data);
      return;
    }
    if (this.pending.length < MAX_PENDING) this.pending.push(data);
    // The session ended (an alert, the server closed it): the next datagram starts a new handshake.
    if (!this.connecting) this.connect().catch((err: Error) => this.onError(err));
  }

  /**
   * Drops the session and handshakes again: what a device does when its server stops answering (the server
   * restarted and lost the session; DTLS has no way to say so).
   */
  newSession(): void {
    if (this.closed) return;
    void this.dropSocket();
    this.connect().catch((err: Error) => this.onError(err));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pending = [];
    await this.dropSocket();
  }

  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    const deadline = Date.now() + (this.options.handshakeTimeoutMs ?? 30_000);
    const run = async () => {
      // node-dtls-client sends each flight once, so one lost datagram stalls its handshake until it times out.
      // Attempts with doubling time limits (1 s, 2 s, 4 s, ...) stand in for RFC 6347 retransmission.
      for (let attemptMs = 1000; ; attemptMs *= 2) {
        try {
          await this.attempt(Math.max(100, Math.min(attemptMs, deadline - Date.now())));
          return;
        } catch (err) {
          const retryable = /timed out|superseded/.test((err as Error).message);
          if (this.closed || Date.now() >= deadline || !retryable) throw err;
        }
      }
    };
    const connecting = run().finally(() => {
      if (this.connecting === connecting) this.connecting = undefined;
    });
    this.connecting = connecting;
    return connecting;
  }

  /** One handshake with node-dtls-client, given up after `timeoutMs`. */
  private attempt(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('transport closed'));
        return;
      }
      const socket = dtls.createSocket({
        type: isIP(this.serverPeer.address) === 6 ? 'udp6' : 'udp4',
        address: this.serverPeer.address,
        port: this.serverPeer.port,
        // node-dtls-client turns the key text into bytes as latin1: any binary key survives the round trip.
        psk: { [this.psk.identity]: this.psk.key.toString('latin1') },
        timeout: timeoutMs,
        ciphers: (this.options.cipherSuites ?? DEFAULT_SUITES) as never,
      }) as unknown as DtlsSocket;
      this.socket = socket;
      let settled = false;
      socket.on('connected', () => {
        if (this.socket !== socket) return;
        this.connected = true;
        this.sessions++;
        settled = true;
        const queued = this.pending;
        this.pending = [];
        for (const data of queued) socket.send(data);
        resolve();
      });
      socket.on('message', (data) => {
        if (this.socket === socket) this.listener?.(data, this.serverPeer);
      });
      const ended = (err?: Error) => {
        // Dropped by us (newSession() during this handshake): the next attempt is already wanted.
        const superseded = this.socket !== socket;
        if (!superseded) void this.dropSocket();
        if (!settled) {
          settled = true;
          reject(
            superseded
              ? new Error('handshake superseded by a new session')
              : (err ?? new Error('the DTLS connection closed during the handshake')),
          );
        } else if (err && !this.closed) this.onError(err);
      };
      socket.on('error', (err) => ended(new Error(`DTLS with ${this.serverPeer.key}: ${err.message}`)));
      socket.on('close', () => ended());
    });
  }

  /** Forgets the current socket: close_notify when the session is up, a plain close otherwise. */
  private dropSocket(): Promise<void> {
    const socket = this.socket;
    const wasConnected = this.connected;
    this.socket = undefined;
    this.connected = false;
    if (!socket || socket._isClosed) return Promise.resolve();
    if (!wasConnected) {
      socket.killConnection();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
