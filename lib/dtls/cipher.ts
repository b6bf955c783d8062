/**
 * Record protection: one object per direction and epoch, for the two suite families we implement:
 * AEAD (AES-128-CCM_8, AES-128-GCM; RFC 6655 / RFC 5288) and AES-128-CBC with HMAC-SHA256 (RFC 5246 §6.2.3.2).
 */

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { writeSeqNum } from './bytes';
import { CcmKey, ccmKeyCache } from './ccm-cache';
import type { BulkCipher } from './suites';

/** The record header fields that go into the additional data / MAC (RFC 5246 §6.2.3.3). */
export interface RecordContext {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit record sequence number. */
  sequence: number;
  /** The Connection ID of a tls12_cid record: selects the RFC 9146 §5 additional data. */
  cid?: Buffer;
}

export interface RecordProtection {
  /** The most bytes `encrypt` adds to a plaintext (to size fragments to the PMTU). */
  readonly overhead: number;
  /**
   * The protected fragment; with `headroom`, preceded by that many bytes left for the caller (the
   * record header), so that the record is built in one buffer without a copy of the fragment.
   */
  encrypt(context: RecordContext, plaintext: Buffer, headroom?: number): Buffer;
  /** The plaintext, or undefined when the record does not authenticate (never throws). */
  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined;
  /** The keys will not be used again (the session ended): frees what is kept for them beyond the key bytes. */
  release(): void;
}

/** Both directions' keys, as the handshake derives them from the key block. */
export interface ConnectionKeys {
  /** Protects what the client writes (we decrypt with it). */
  client: RecordProtection;
  /** Protects what we write. */
  server: RecordProtection;
}

const AES_128_KEY_LENGTH = 16;
const AEAD_SALT_LENGTH = 4;
const AEAD_EXPLICIT_NONCE_LENGTH = 8;
const HMAC_SHA256_LENGTH = 32;
const AES_BLOCK = 16;
const CCM_8_TAG_LENGTH = 8;

/** 8 bytes of 0xff that start the RFC 9146 additional data (where seq_num used to be). */
const SEQ_NUM_PLACEHOLDER = Buffer.alloc(8, 0xff);

/**
 * The additional data (AEAD) or MAC prefix (CBC): seq_num (epoch and sequence number, 8 bytes) +
 * type + version + length (RFC 5246 §6.2.3.3); for a record with a Connection ID, RFC 9146 §5:
 * seq_num_placeholder + tls12_cid + cid_length + tls12_cid + version + epoch + sequence number +
 * cid + length of the DTLSInnerPlaintext.
 */
export function additionalData(context: RecordContext, plaintextLength: number): Buffer {
  return Buffer.from(recordAdditionalData(context, plaintextLength)); // a copy: the record path's may be scratch
}

/** The 13 bytes of additional data of a record without a CID, written into one shared scratch buffer. */
const AAD_SCRATCH = Buffer.alloc(13);

/**
 * The additional data in a buffer valid until the next call: the shared scratch for a record without a
 * CID (saves an allocation per record: node:crypto's setAAD and AesCcm copy it), a new one with a CID.
 */
function recordAdditionalData(context: RecordContext, plaintextLength: number): Buffer {
  return context.cid !== undefined
    ? cidAdditionalData(context, context.cid, plaintextLength)
    : scratchAdditionalData(context, plaintextLength);
}

function scratchAdditionalData(context: RecordContext, plaintextLength: number): Buffer {
  const out = AAD_SCRATCH;
  writeSeqNum(out, 0, context.epoch, context.sequence);
  out[8] = context.type;
  out[9] = context.version >>> 8;
  out[10] = context.version & 0xff;
  out[11] = plaintextLength >>> 8;
  out[12] = plaintextLength & 0xff;
  return out;
}

function cidAdditionalData(context: RecordContext, cid: Buffer, plaintextLength: number): Buffer {
  const out = Buffer.allocUnsafe(23 + cid.length);
  SEQ_NUM_PLACEHOLDER.copy(out, 0);
  out[8] = context.type;
  out[9] = cid.length;
  out[10] = context.type;
  out.writeUInt16BE(context.version, 11);
  writeSeqNum(out, 13, context.epoch, context.sequence);
  cid.copy(out, 21);
  out.writeUInt16BE(plaintextLength, 21 + cid.length);
  return out;
}

/**
 * The AEAD nonce (RFC 5288 §3, RFC 6655 §3): the 4-byte salt from the key block, then the 8-byte explicit
 * nonce carried in the record. One shared scratch buffer (AesCcm and node:crypto copy it): no allocation
 * and no Buffer.concat per record.
 */
const NONCE_SCRATCH = Buffer.alloc(AEAD_SALT_LENGTH + AEAD_EXPLICIT_NONCE_LENGTH);

function recordNonce(salt: Buffer, explicit: Buffer, explicitOffset: number): Buffer {
  const nonce = NONCE_SCRATCH;
  for (let i = 0; i < AEAD_SALT_LENGTH; i++) nonce[i] = salt[i];
  for (let i = 0; i < AEAD_EXPLICIT_NONCE_LENGTH; i++) nonce[AEAD_SALT_LENGTH + i] = explicit[explicitOffset + i];
  return nonce;
}

/**
 * The buffer of a protected AEAD record: `headroom` bytes for the caller, then the explicit nonce (the
 * record's epoch and sequence number: unique per key by construction), the ciphertext and the tag.
 */
function aeadOutput(context: RecordContext, plaintextLength: number, tagLength: number, headroom: number): Buffer {
  const out = Buffer.allocUnsafe(headroom + AEAD_EXPLICIT_NONCE_LENGTH + plaintextLength + tagLength);
  writeSeqNum(out, headroom, context.epoch, context.sequence);
  return out;
}

/**
 * AES-128-CCM_8 (RFC 6655) on an AesCcm kept per key while the key is in use (ccm-cache.ts): a CBC-MAC
 * update per record and an ECB update per eight records, on cipher objects made once, instead of a
 * node:crypto CCM cipher object (key schedule, five native calls) per record; see ccm.ts.
 */
class CcmProtection implements RecordProtection {
  readonly overhead: number;
  private readonly key: CcmKey;

  constructor(
    key: Buffer,
    private readonly salt: Buffer,
    private readonly tagLength: number,
  ) {
    this.key = new CcmKey(key, tagLength);
    this.overhead = AEAD_EXPLICIT_NONCE_LENGTH + tagLength;
  }

  release(): void {
    ccmKeyCache.release(this.key);
  }

  encrypt(context: RecordContext, plaintext: Buffer, headroom = 0): Buffer {
    const out = aeadOutput(context, plaintext.length, this.tagLength, headroom);
    const nonce = recordNonce(this.salt, out, headroom);
    const aad = recordAdditionalData(context, plaintext.length);
    ccmKeyCache.get(this.key).seal(nonce, 0, aad, plaintext, out, headroom + AEAD_EXPLICIT_NONCE_LENGTH);
    return out;
  }

  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined {
    const ciphertextLength = fragment.length - this.overhead;
    if (ciphertextLength < 0) return undefined;
    try {
      const nonce = recordNonce(this.salt, fragment, 0);
      const aad = recordAdditionalData(context, ciphertextLength);
      return ccmKeyCache.get(this.key).open(nonce, 0, aad, fragment, AEAD_EXPLICIT_NONCE_LENGTH, ciphertextLength);
    } catch {
      return undefined;
    }
  }
}

/**
 * AES-128-GCM (RFC 5288) with node:crypto's cipher, one per record (its nonce is fixed at creation).
 * GHASH cannot be built from a reusable AES object as CBC-MAC can, and it is not worth writing in
 * JavaScript: only the nonce, additional data and output copies are saved here.
 */
class GcmProtection implements RecordProtection {
  private static readonly TAG_LENGTH = 16;
  readonly overhead = AEAD_EXPLICIT_NONCE_LENGTH + GcmProtection.TAG_LENGTH;

  constructor(
    private readonly key: Buffer,
    private readonly salt: Buffer,
  ) {}

  release(): void {
    // nothing kept beyond the key
  }

  encrypt(context: RecordContext, plaintext: Buffer, headroom = 0): Buffer {
    const out = aeadOutput(context, plaintext.length, GcmProtection.TAG_LENGTH, headroom);
    const nonce = recordNonce(this.salt, out, headroom);
    const cipher = createCipheriv('aes-128-gcm', this.key, nonce, { authTagLength: GcmProtection.TAG_LENGTH });
    cipher.setAAD(recordAdditionalData(context, plaintext.length));
    const body = cipher.update(plaintext);
    cipher.final(); // GCM is a stream mode: everything came out of update()
    const bodyAt = headroom + AEAD_EXPLICIT_NONCE_LENGTH;
    body.copy(out, bodyAt);
    cipher.getAuthTag().copy(out, bodyAt + body.length);
    return out;
  }

  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined {
    const ciphertextLength = fragment.length - this.overhead;
    if (ciphertextLength < 0) return undefined;
    const ciphertextEnd = AEAD_EXPLICIT_NONCE_LENGTH + ciphertextLength;
    try {
      const nonce = recordNonce(this.salt, fragment, 0);
      const decipher = createDecipheriv('aes-128-gcm', this.key, nonce, { authTagLength: GcmProtection.TAG_LENGTH });
      decipher.setAuthTag(fragment.subarray(ciphertextEnd));
      decipher.setAAD(recordAdditionalData(context, ciphertextLength));
      const plaintext = decipher.update(fragment.subarray(AEAD_EXPLICIT_NONCE_LENGTH, ciphertextEnd));
      decipher.final();
      return plaintext;
    } catch {
      return undefined;
    }
  }
}

class CbcHmacProtection implements RecordProtection {
  /** IV + MAC + at most one block of padding. */
  readonly overhead = AES_BLOCK + HMAC_SHA256_LENGTH + AES_BLOCK;

  constructor(
    private readonly macKey: Buffer,
    private readonly key: Buffer,
  ) {}

  release(): void {
    // nothing kept beyond the keys
  }

  encrypt(context: RecordContext, plaintext: Buffer, headroom = 0): Buffer {
    const mac = this.mac(context, plaintext);
    const unpadded = plaintext.length + HMAC_SHA256_LENGTH + 1;
    const paddingLength = (AES_BLOCK - (unpadded % AES_BLOCK)) % AES_BLOCK;
    const padding = Buffer.alloc(paddingLength + 1, paddingLength);
    const iv = randomBytes(AES_BLOCK);
    const cipher = createCipheriv('aes-128-cbc', this.key, iv).setAutoPadding(false);
    const body = cipher.update(Buffer.concat([plaintext, mac, padding])); // whole blocks: final() adds nothing
    cipher.final();
    const out = Buffer.allocUnsafe(headroom + AES_BLOCK + body.length);
    iv.copy(out, headroom);
    body.copy(out, headroom + AES_BLOCK);
    return out;
  }

  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined {
    const bodyLength = fragment.length - AES_BLOCK;
    // At least one block must hold the MAC and the padding length byte.
    if (bodyLength < HMAC_SHA256_LENGTH + AES_BLOCK || bodyLength % AES_BLOCK !== 0) return undefined;
    let decrypted: Buffer;
    try {
      const decipher = createDecipheriv('aes-128-cbc', this.key, fragment.subarray(0, AES_BLOCK));
      decipher.setAutoPadding(false);
      decrypted = Buffer.concat([decipher.update(fragment.subarray(AES_BLOCK)), decipher.final()]);
    } catch {
      return undefined;
    }
    const { paddingLength, paddingOk } = checkPadding(decrypted, HMAC_SHA256_LENGTH);
    // RFC 5246 §6.2.3.2: with bad padding, still compute the MAC (as if there were no padding) so
    // that a padding failure and a MAC failure take the same path and look alike.
    const plaintextLength = decrypted.length - HMAC_SHA256_LENGTH - 1 - (paddingOk ? paddingLength : 0);
    const plaintext = decrypted.subarray(0, plaintextLength);
    const receivedMac = decrypted.subarray(plaintextLength, plaintextLength + HMAC_SHA256_LENGTH);
    const macOk = timingSafeEqual(this.mac(context, plaintext), receivedMac);
    return macOk && paddingOk ? plaintext : undefined;
  }

  private mac(context: RecordContext, plaintext: Buffer): Buffer {
    return createHmac('sha256', this.macKey)
      .update(recordAdditionalData(context, plaintext.length))
      .update(plaintext)
      .digest();
  }
}

/**
 * Reads the CBC padding at the end of `decrypted` (padding bytes then the padding length byte, all
 * equal) without branching on the padding contents: every candidate byte is inspected whatever the
 * claimed length, and differences are OR-ed together.
 */
export function checkPadding(decrypted: Buffer, macLength: number): { paddingLength: number; paddingOk: boolean } {
  const last = decrypted.length - 1;
  const paddingLength = decrypted[last];
  let bad = paddingLength + 1 + macLength > decrypted.length ? 1 : 0;
  const inspected = Math.min(256, decrypted.length);
  for (let i = 1; i <= inspected; i++) {
    // inPadding is 1 for the length byte (i = 1) and the padding bytes (i <= paddingLength + 1), 0 beyond.
    const inPadding = ((i - paddingLength - 2) >>> 31) & 1;
    bad |= inPadding & (decrypted[last - i + 1] !== paddingLength ? 1 : 0);
  }
  return { paddingLength, paddingOk: bad === 0 };
}

export function keyBlockLength(cipher: BulkCipher): number {
  return cipher === 'aes-128-cbc-sha256'
    ? 2 * (HMAC_SHA256_LENGTH + AES_128_KEY_LENGTH)
    : 2 * (AES_128_KEY_LENGTH + AEAD_SALT_LENGTH);
}

/**
 * Splits the key block (RFC 5246 §6.3: client MAC key, server MAC key, client key, server key,
 * client IV, server IV) and builds both directions' protection.
 */
export function connectionKeys(cipher: BulkCipher, block: Buffer): ConnectionKeys {
  if (cipher === 'aes-128-cbc-sha256') {
    const m = HMAC_SHA256_LENGTH;
    const k = AES_128_KEY_LENGTH;
    return {
      client: new CbcHmacProtection(block.subarray(0, m), block.subarray(2 * m, 2 * m + k)),
      server: new CbcHmacProtection(block.subarray(m, 2 * m), block.subarray(2 * m + k, 2 * m + 2 * k)),
    };
  }
  const k = AES_128_KEY_LENGTH;
  const s = AEAD_SALT_LENGTH;
  const clientKey = block.subarray(0, k);
  const serverKey = block.subarray(k, 2 * k);
  const clientSalt = block.subarray(2 * k, 2 * k + s);
  const serverSalt = block.subarray(2 * k + s, 2 * k + 2 * s);
  if (cipher === 'aes-128-gcm') {
    return { client: new GcmProtection(clientKey, clientSalt), server: new GcmProtection(serverKey, serverSalt) };
  }
  return {
    client: new CcmProtection(clientKey, clientSalt, CCM_8_TAG_LENGTH),
    server: new CcmProtection(serverKey, serverSalt, CCM_8_TAG_LENGTH),
  };
}
