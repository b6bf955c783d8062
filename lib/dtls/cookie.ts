/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1): an HMAC over the client's address and
 * port and the ClientHello fields the client must repeat, keyed by a secret that rotates. Nothing
 * is stored per client: a spoofed ClientHello flood costs one HMAC per datagram and no memory.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { uint16, vector } from './bytes';
import type { ClientHello } from './messages';

export const COOKIE_LENGTH = 32;

export class CookieJar {
  private current = randomBytes(32);
  private previous = randomBytes(32);
  private rotatedAt: number;

  constructor(
    /** A cookie stays valid between one and two rotation periods. */
    private readonly rotationMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.rotatedAt = now();
  }

  issue(address: string, port: number, hello: ClientHello): Buffer {
    this.rotate();
    return cookieFor(this.current, address, port, hello);
  }

  verify(address: string, port: number, hello: ClientHello): boolean {
    if (hello.cookie.length !== COOKIE_LENGTH) return false;
    this.rotate();
    // Both secrets are always checked so that timing does not tell which one matched.
    const current = timingSafeEqual(cookieFor(this.current, address, port, hello), hello.cookie);
    const previous = timingSafeEqual(cookieFor(this.previous, address, port, hello), hello.cookie);
    return current || previous;
  }

  /** Rotates lazily on use, so that no timer is needed. */
  private rotate(): void {
    const elapsed = this.now() - this.rotatedAt;
    if (elapsed < this.rotationMs) return;
    this.previous = elapsed < 2 * this.rotationMs ? this.current : randomBytes(32);
    this.current = randomBytes(32);
    this.rotatedAt = this.now();
  }
}

function cookieFor(secret: Buffer, address: string, port: number, hello: ClientHello): Buffer {
  const suites = Buffer.alloc(hello.cipherSuites.length * 2);
  hello.cipherSuites.forEach((suite, i) => suites.writeUInt16BE(suite, i * 2));
  return createHmac('sha256', secret)
    .update(vector(1, Buffer.from(address, 'latin1')))
    .update(uint16(port))
    .update(uint16(hello.clientVersion))
    .update(hello.random)
    .update(vector(1, hello.sessionId))
    .update(vector(2, suites))
    .update(vector(1, hello.compressionMethods))
    .digest();
}
