/**
 * Record protection: one object per direction and epoch, for the two suite families we implement:
 * AEAD (AES-128-CCM_8, AES-128-GCM; RFC 6655 / RFC 5288) and AES-128-CBC with HMAC-SHA256 (RFC 5246 §6.2.3.2).
 */

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
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
  encrypt(context: RecordContext, plaintext: Buffer): Buffer;
  /** The plaintext, or undefined when the record does not authenticate (never throws). */
  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined;
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

/** 8 bytes of 0xff that start the RFC 9146 additional data (where seq_num used to be). */
const SEQ_NUM_PLACEHOLDER = Buffer.alloc(8, 0xff);

/**
 * The additional data (AEAD) or MAC prefix (CBC): seq_num (epoch and sequence number, 8 bytes) +
 * type + version + length (RFC 5246 §6.2.3.3); for a record with a Connection ID, RFC 9146 §5:
 * seq_num_placeholder + tls12_cid + cid_length + tls12_cid + version + epoch + sequence number +
 * cid + length of the DTLSInnerPlaintext.
 */
export function additionalData(context: RecordContext, plaintextLength: number): Buffer {
  const cid = context.cid;
  if (cid !== undefined) {
    const out = Buffer.allocUnsafe(23 + cid.length);
    SEQ_NUM_PLACEHOLDER.copy(out, 0);
    out[8] = context.type;
    out[9] = cid.length;
    out[10] = context.type;
    out.writeUInt16BE(context.version, 11);
    out.writeUInt16BE(context.epoch, 13);
    out.writeUIntBE(context.sequence, 15, 6);
    cid.copy(out, 21);
    out.writeUInt16BE(plaintextLength, 21 + cid.length);
    return out;
  }
  const out = Buffer.allocUnsafe(13);
  out.writeUInt16BE(context.epoch, 0);
  out.writeUIntBE(context.sequence, 2, 6);
  out[8] = context.type;
  out.writeUInt16BE(context.version, 9);
  out.writeUInt16BE(plaintextLength, 11);
  return out;
}

class AeadProtection implements RecordProtection {
  readonly overhead: number;
  private readonly algorithm: 'aes-128-ccm' | 'aes-128-gcm';
  private readonly tagLength: number;

  constructor(
    cipher: 'aes-128-ccm8' | 'aes-128-gcm',
    private readonly key: Buffer,
    private readonly salt: Buffer,
  ) {
    this.algorithm = cipher === 'aes-128-ccm8' ? 'aes-128-ccm' : 'aes-128-gcm';
    this.tagLength = cipher === 'aes-128-ccm8' ? 8 : 16;
    this.overhead = AEAD_EXPLICIT_NONCE_LENGTH + this.tagLength;
  }

  encrypt(context: RecordContext, plaintext: Buffer): Buffer {
    // The explicit nonce is the record's epoch and sequence number: unique per key by construction.
    const explicitNonce = Buffer.allocUnsafe(AEAD_EXPLICIT_NONCE_LENGTH);
    explicitNonce.writeUInt16BE(context.epoch, 0);
    explicitNonce.writeUIntBE(context.sequence, 2, 6);
    const nonce = Buffer.concat([this.salt, explicitNonce]);
    const cipher =
      this.algorithm === 'aes-128-ccm'
        ? createCipheriv(this.algorithm, this.key, nonce, { authTagLength: this.tagLength })
        : createCipheriv(this.algorithm, this.key, nonce, { authTagLength: this.tagLength });
    cipher.setAAD(additionalData(context, plaintext.length), { plaintextLength: plaintext.length });
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([explicitNonce, body, cipher.getAuthTag()]);
  }

  decrypt(context: RecordContext, fragment: Buffer): Buffer | undefined {
    const ciphertextLength = fragment.length - this.overhead;
    if (ciphertextLength < 0) return undefined;
    const nonce = Buffer.concat([this.salt, fragment.subarray(0, AEAD_EXPLICIT_NONCE_LENGTH)]);
    const ciphertext = fragment.subarray(AEAD_EXPLICIT_NONCE_LENGTH, AEAD_EXPLICIT_NONCE_LENGTH + ciphertextLength);
    const tag = fragment.subarray(fragment.length - this.tagLength);
    try {
      const decipher =
        this.algorithm === 'aes-128-ccm'
          ? createDecipheriv(this.algorithm, this.key, nonce, { authTagLength: this.tagLength })
          : createDecipheriv(this.algorithm, this.key, nonce, { authTagLength: this.tagLength });
      decipher.setAuthTag(tag);
      decipher.setAAD(additionalData(context, ciphertextLength), { plaintextLength: ciphertextLength });
      const plaintext = decipher.update(ciphertext);
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

  encrypt(context: RecordContext, plaintext: Buffer): Buffer {
    const mac = this.mac(context, plaintext);
    const unpadded = plaintext.length + HMAC_SHA256_LENGTH + 1;
    const paddingLength = (AES_BLOCK - (unpadded % AES_BLOCK)) % AES_BLOCK;
    const padding = Buffer.alloc(paddingLength + 1, paddingLength);
    const iv = randomBytes(AES_BLOCK);
    const cipher = createCipheriv('aes-128-cbc', this.key, iv).setAutoPadding(false);
    const body = Buffer.concat([cipher.update(Buffer.concat([plaintext, mac, padding])), cipher.final()]);
    return Buffer.concat([iv, body]);
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
      .update(additionalData(context, plaintext.length))
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
  return {
    client: new AeadProtection(cipher, block.subarray(0, k), block.subarray(2 * k, 2 * k + s)),
    server: new AeadProtection(cipher, block.subarray(k, 2 * k), block.subarray(2 * k + s, 2 * k + 2 * s)),
  };
}
