import { SECURE_KEY_PREFIX } from './peer';
import type { DatagramTransport, Peer, PeerAddress } from './types';

/** A transport with sessions (DTLS): it can only send to a peer that completed a handshake. */
export interface SessionTransport extends DatagramTransport {
  hasSession(peer: PeerAddress): boolean;
}

/**
 * One CoAP endpoint over a plain (coap, 5683) and a secure (coaps, 5684) transport. Peers that arrive
 * through the secure one are marked `secure` and keyed `coaps://…`, so their exchanges, observations and
 * registrations can never be matched by a plain datagram from the same address and port; `send` routes by
 * that mark. Either transport may be absent (a listener turned off).
 */
export class DualTransport implements DatagramTransport {
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;

  constructor(
    readonly plain: DatagramTransport | undefined,
    readonly secure: SessionTransport | undefined,
  ) {
    if (!plain && !secure) throw new Error('at least one of the plain and secure listeners must be on');
    plain?.onDatagram((data, peer) => this.listener?.(data, peer));
    secure?.onDatagram((data, peer) => {
      const marked: Peer = { ...peer, key: SECURE_KEY_PREFIX + peer.key, secure: true };
      this.listener?.(data, marked);
    });
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  /** Starts both; if one fails to bind, the other is closed again and the error passed on. */
  async start(): Promise<PeerAddress> {
    const results = await Promise.allSettled([this.plain?.start(), this.secure?.start()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw failed.reason;
    }
    const address = this.localAddress();
    if (!address) throw new Error('no listener bound');
    return address;
  }

  send(data: Buffer, peer: PeerAddress): void {
    if (peer.secure === true) this.secure?.send(data, { address: peer.address, port: peer.port });
    else this.plain?.send(data, peer);
  }

  /** Whether a datagram to this peer can go out now (a secure one needs a DTLS session). */
  canReach(peer: PeerAddress): boolean {
    if (peer.secure === true) return this.secure?.hasSession({ address: peer.address, port: peer.port }) ?? false;
    return this.plain !== undefined;
  }

  async close(): Promise<void> {
    await Promise.all([this.plain?.close(), this.secure?.close()]);
  }

  /** The plain listener's address, or the secure one's when plain is off. */
  localAddress(): PeerAddress | undefined {
    return this.plain ? this.plain.localAddress() : this.secure?.localAddress();
  }

  secureAddress(): PeerAddress | undefined {
    return this.secure?.localAddress();
  }
}
