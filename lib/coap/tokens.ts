/**
 * Where CoAP tokens come from: random 8-byte tokens cut from a pooled random buffer, and copies of the tokens
 * kept for the life of an observation in slabs of their own.
 */
import { randomBytes } from 'node:crypto';

let tokenPool = Buffer.alloc(0);
let tokenPoolOff = 0;

/** A random 8-byte token (a view into a shared pool: copy it with `keepToken` to keep it long). */
export function randomToken(): Buffer {
  if (tokenPoolOff + 8 > tokenPool.length) {
    tokenPool = randomBytes(4096);
    tokenPoolOff = 0;
  }
  const t = tokenPool.subarray(tokenPoolOff, tokenPoolOff + 8);
  tokenPoolOff += 8;
  return t;
}

let keptTokens = Buffer.alloc(0);
let keptTokensOff = 0;
/**
 * A copy of a token kept for the life of an observation. `Buffer.from` would take it from Node's shared
 * 8 KB pool, where each kept token pins a whole slab otherwise used by short-lived buffers (about 170
 * bytes per observation at 100k); these slabs hold nothing but kept tokens.
 */
export function keepToken(token: Buffer): Buffer {
  const n = token.length;
  if (n > 64) return Buffer.from(token); // not a CoAP token (at most 8 bytes): no slab for it
  if (keptTokensOff + n > keptTokens.length) {
    keptTokens = Buffer.allocUnsafeSlow(4096);
    keptTokensOff = 0;
  }
  const t = keptTokens.subarray(keptTokensOff, keptTokensOff + n);
  token.copy(t);
  keptTokensOff += n;
  return t;
}
