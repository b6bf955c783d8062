/** One CoAP endpoint over a plain and a secure (DTLS) transport: peers marked and keyed by the one they came through. */

import { SECURE_KEY_PREFIX, peerKey } from './peer';
import type { DatagramTransport, Peer, PeerAddress, SecurityIdentity } from './types';

/** A transport with sessions (DTLS): it can only send to a peer that completed a handshake. */
export interface SessionTransport extends DatagramTransport {
  hasSession(peer: PeerAddress): boolean;
  /** The identity the session at this address proved (absent: no session, or a transport that cannot tell). */
  sessionSecurity?(peer: PeerAddress): SecurityIdentity | undefined;
  /** Ends every session whose identity matches (credentials revoked); how many. */
  closeSessionsOf?(matches: (security: SecurityIdentity) => boolean): number;
  /** A session followed its peer to a new address (DTLS Connection ID), or ended. Optional. */
  on?(event: 'peerMoved', listener: (previous: Peer, current: Peer) => void): unknown;
  on?(event: 'sessionClosed', listener: (peer: Peer, reason: string) => void): unknown;
  /** Records dropped since it started, by reason (DTLS: see lib/dtls/drops.ts). Optional. */
  droppedRecords?(): Partial<Record<string, number>>;
}

/**
 * One CoAP endpoint over a plain (coap, 5683) and a secure (coaps, 5684) transport. Peers that arrive
 * through the secure one are marked `secure` and keyed `coaps://…`, so their exchanges, observations and
 * registrations can never be matched by a plain datagram from the same address and port; `send` routes by
 * that mark. Either transport may be absent (a listener turned off).
 *
 * A DTLS session that moves to a new address (Connection ID after a NAT rebinding) keeps the key it started
 * with: everything keyed by it above (CoAP exchanges and observations, the registration) goes on, and
 * datagrams for that key go to wherever the session is now.
 */
export class DualTransport implements DatagramTransport {
  /** Called when a secure peer moved: its stable key, and where it is now. */
  onPeerMoved: (key: string, current: PeerAddress) => void = () => undefined;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  /**
   * Secure transport key (address:port now) -> stable key and whose it is, for sessions that moved or whose key
   * was taken.
   */
  private readonly stableKeyOf = new Map<string, { key: string; security?: SecurityIdentity }>();
  /** Stable key -> the address its session is at now, for sessions that moved. */
  private readonly movedTo = new Map<string, PeerAddress>();
  private collisions = 0;
  private readonly marked = new WeakMap<Peer, Peer>();

  constructor(
    readonly plain: DatagramTransport | undefined,
    readonly secure: SessionTransport | undefined,
  ) {
    if (!plain && !secure) throw new Error('at least one of the plain and secure listeners must be on');
    plain?.onDatagram((data, peer) => this.listener?.(data, peer));
    secure?.onDatagram((data, peer) => {
      // The DTLS layer hands the same peer object for every datagram of a session (a new one when the session
      // moves): its marked twin is made once, not per datagram.
      let marked = this.marked.get(peer);
      if (marked === undefined) {
        marked = { ...peer, key: this.stableKey(peer.key, peer.security), secure: true };
        this.marked.set(peer, marked);
      }
      this.listener?.(data, marked);
    });
    secure?.on?.('peerMoved', (previous, current) => this.moved(previous, current));
    secure?.on?.('sessionClosed', (peer) => this.forget(peer.key));
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
    if (peer.secure !== true) this.plain?.send(data, peer);
    else if (this.canReach(peer)) this.secure?.send(data, this.currentAddress(peer));
  }

  /**
   * Whether a datagram to this peer can go out now: a secure one needs a DTLS session, and when the peer says
   * whose (`security`, as it registered), a session of that identity: another device that handshook from the
   * same address and port since (a NAT reusing the port) must not receive what was meant for this one.
   */
  canReach(peer: PeerAddress): boolean {
    if (peer.secure !== true) return this.plain !== undefined;
    const secure = this.secure;
    if (!secure) return false;
    const at = this.currentAddress(peer);
    const expected = (peer as Peer).security;
    if (expected === undefined || !secure.sessionSecurity) return secure.hasSession(at);
    return sameIdentity(secure.sessionSecurity(at), expected);
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

  /** The key the layers above know a secure peer by, given its transport key (address:port now). */
  private stableKey(transportKey: string, security?: SecurityIdentity): string {
    const known = this.stableKeyOf.get(transportKey);
    if (known !== undefined) {
      if (known.security === undefined || security === undefined || sameIdentity(security, known.security))
        return known.key;
      // Someone else handshook at the address a moved session was last seen at: that session is gone.
      this.stableKeyOf.delete(transportKey);
      this.movedTo.delete(known.key);
    }
    const key = SECURE_KEY_PREFIX + transportKey;
    if (!this.movedTo.has(key)) return key;
    // A session that moved away still goes by this address's key: a newcomer here needs another one.
    const distinct = `${key}#${++this.collisions}`;
    this.stableKeyOf.set(transportKey, { key: distinct, security });
    return distinct;
  }

  /** A session that had moved before this transport started (taken over after a redeploy): its key and address. */
  restoreMovedPeer(key: string, current: PeerAddress, security?: SecurityIdentity): void {
    this.stableKeyOf.set(peerKey(current.address, current.port), { key, security });
    this.movedTo.set(key, { address: current.address, port: current.port });
  }

  private currentAddress(peer: PeerAddress): PeerAddress {
    const key = (peer as Peer).key;
    const moved = key === undefined ? undefined : this.movedTo.get(key);
    return moved ?? { address: peer.address, port: peer.port };
  }

  private moved(previous: Peer, current: Peer): void {
    const key = this.stableKey(previous.key, previous.security);
    this.stableKeyOf.delete(previous.key);
    this.forget(current.key);
    this.stableKeyOf.set(current.key, { key, security: current.security });
    this.movedTo.set(key, { address: current.address, port: current.port });
    this.onPeerMoved(key, { address: current.address, port: current.port, secure: true });
  }

  private forget(transportKey: string): void {
    const known = this.stableKeyOf.get(transportKey);
    if (known === undefined) return;
    this.stableKeyOf.delete(transportKey);
    this.movedTo.delete(known.key);
  }
}

function sameIdentity(a: SecurityIdentity | undefined, b: SecurityIdentity): boolean {
  return a !== undefined && a.mode === b.mode && a.identity === b.identity;
}
