/**
 * Admitting new handshakes under a flood: a ClientHello without a valid cookie gets one statelessly
 * (RFC 6347 §4.2.1), and the handshakes past the cookie exchange share a half-open budget, where the
 * oldest of an address (or of all) make room for a new one.
 */

import type { Peer } from '../transport/types';
import type { DtlsConnection } from './connection';
import { CookieJar } from './cookie';
import { HalfOpenBudget } from './half-open';
import type { ClientHello } from './messages';

export class HandshakeAdmission {
  private readonly cookies = new CookieJar();
  private readonly halfOpen: HalfOpenBudget<DtlsConnection>;

  constructor(maxPerAddress: number, maxTotal: number) {
    this.halfOpen = new HalfOpenBudget(maxPerAddress, maxTotal);
  }

  /** Handshakes past the cookie exchange and not finished yet. */
  get size(): number {
    return this.halfOpen.size;
  }

  /** Whether the ClientHello carries the cookie we would give this address, port and hello. */
  hasCookie(peer: Peer, hello: ClientHello): boolean {
    return this.cookies.verify(peer.address, peer.port, hello);
  }

  /** The cookie for a HelloVerifyRequest to this address, port and hello. */
  cookieFor(peer: Peer, hello: ClientHello): Buffer {
    return this.cookies.issue(peer.address, peer.port, hello);
  }

  /** Evicts the oldest half-open handshakes of this address (or of all) until one more fits. */
  makeRoom(address: string, evicted: () => void): void {
    for (
      let victim = this.halfOpen.victimFor(address);
      victim !== undefined;
      victim = this.halfOpen.victimFor(address)
    ) {
      evicted();
      victim.fail(undefined, 'evicted by newer handshakes (too many in progress from its address, or in all)');
      this.halfOpen.release(victim); // fail() released it already, unless it was no longer handshaking
    }
  }

  add(connection: DtlsConnection, address: string): void {
    this.halfOpen.add(connection, address);
  }

  /** The handshake finished, failed or was evicted. */
  release(connection: DtlsConnection): void {
    this.halfOpen.release(connection);
  }
}
