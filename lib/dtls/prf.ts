/**
 * The TLS 1.2 PRF with SHA-256 (RFC 5246 §5) and the derivations built on it. Every suite we
 * implement uses SHA-256 for the PRF and the handshake hash.
 */

import { createHash, createHmac } from 'node:crypto';

/** P_SHA256(secret, label + seed) expanded to `length` bytes. */
export function prfSha256(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const labelledSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const blocks: Buffer[] = [];
  let produced = 0;
  let a = labelledSeed; // A(0)
  while (produced < length) {
    a = createHmac('sha256', secret).update(a).digest();
    const block = createHmac('sha256', secret).update(a).update(labelledSeed).digest();
    blocks.push(block);
    produced += block.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export const MASTER_SECRET_LENGTH = 48;
export const VERIFY_DATA_LENGTH = 12;

/** master_secret = PRF(pre_master_secret, "master secret", client_random + server_random) (RFC 5246 §8.1). */
export function masterSecret(preMasterSecret: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return prfSha256(preMasterSecret, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_LENGTH);
}

/** RFC 7627 §4: bound to the hash of the handshake up to and including ClientKeyExchange. */
export function extendedMasterSecret(preMasterSecret: Buffer, sessionHash: Buffer): Buffer {
  return prfSha256(preMasterSecret, 'extended master secret', sessionHash, MASTER_SECRET_LENGTH);
}

/** key_block = PRF(master_secret, "key expansion", server_random + client_random) (RFC 5246 §6.3). */
export function keyBlock(master: Buffer, clientRandom: Buffer, serverRandom: Buffer, length: number): Buffer {
  return prfSha256(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), length);
}

/** Finished.verify_data (RFC 5246 §7.4.9) over the SHA-256 of the handshake messages so far. */
export function verifyData(master: Buffer, sender: 'client' | 'server', handshakeHash: Buffer): Buffer {
  return prfSha256(master, `${sender} finished`, handshakeHash, VERIFY_DATA_LENGTH);
}

/** Plain PSK premaster secret (RFC 4279 §2): uint16 N, N zero bytes, uint16 N, the key. */
export function pskPreMasterSecret(psk: Buffer): Buffer {
  const out = Buffer.alloc(4 + 2 * psk.length);
  out.writeUInt16BE(psk.length, 0);
  out.writeUInt16BE(psk.length, 2 + psk.length);
  psk.copy(out, 4 + psk.length);
  return out;
}
