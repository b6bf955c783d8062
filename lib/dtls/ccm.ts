/**
 * AES-128-CCM (RFC 3610), built from two AES cipher objects kept for the life of a key instead of a
 * node:crypto CCM cipher per record. DTLS uses a 12-byte nonce (RFC 6655: L = 3); 7 to 13 work.
 *
 * Why: node's `aes-128-ccm` Cipheriv takes its nonce at creation and cannot be re-keyed, so each
 * record cost a new cipher object (key schedule, EVP context, JS stream wrapper: about 1.5 us) plus
 * setAAD, update, final and getAuthTag (another native call each); over half of DTLS's per-record CPU.
 * Here a record costs two native calls on objects made once per key: one `aes-128-ecb` update that
 * encrypts all the counter blocks A_0..A_n at once (the CTR keystream) and one `aes-128-cbc` update
 * over B_0, the additional data and the message (the CBC-MAC). Both objects only ever encrypt.
 *
 * The CBC object is a stream with a zero IV: its chaining value after an update is the last ciphertext
 * block it produced. To start a new MAC (which needs a zero IV) that value is XOR-ed into B_0 first,
 * which cancels it: E(B_0 XOR c XOR c) = E(B_0).
 *
 * Callers use one instance at a time (everything here is synchronous).
 */

import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';

const BLOCK = 16;
/** The largest additional data encoded with a 2-byte length (RFC 3610 §2.2: 0 < l(a) < 2^16 - 2^8). */
const MAX_SHORT_AAD = 0xfeff;
/** The largest message we take (any length field of 2 bytes or more holds it; DTLS records are far smaller). */
const MAX_MESSAGE = 0xffff;

/** `length` rounded up to whole blocks. */
function blocks(length: number): number {
  return (length + BLOCK - 1) & ~(BLOCK - 1);
}

/**
 * Scratch shared by every instance (one is used at a time, and update() copies its input): the counter
 * blocks A_0..A_n of a keystream, grown for larger records; and the expected tag of a record being opened.
 * Shared rather than per key so that a session holds no scratch of its own.
 */
let counterScratch = Buffer.alloc(BLOCK * 32);
const EXPECTED_TAG = Buffer.alloc(BLOCK);

export class AesCcm {
  /** CTR keystream: encrypts the counter blocks. */
  private readonly ecb: Cipher;
  /** CBC-MAC: one stream whose chaining value is `chain`. */
  private readonly cbc: Cipher;
  /** The CBC stream's current chaining value: the last block it produced (zeros, its IV, at first). */
  private chain: Buffer = Buffer.alloc(BLOCK);
  /** The expected tag of a record being opened (a view of EXPECTED_TAG). */
  private readonly expected: Buffer;

  /** L (RFC 3610 §2.1): the size of the length field and of the counter, 15 - the nonce length. */
  private readonly lengthField: number;

  constructor(
    key: Buffer,
    /** M: 8 for CCM_8, 16 for CCM. */
    readonly tagLength: number,
    /** 15 - L: 12 in DTLS (RFC 6655 §3), 13 in RFC 3610's test packets. */
    private readonly nonceLength = 12,
  ) {
    if (key.length !== 16) throw new RangeError('AES-128-CCM takes a 16-byte key');
    if (tagLength < 4 || tagLength > 16 || tagLength % 2 !== 0) throw new RangeError('bad CCM tag length');
    if (nonceLength < 7 || nonceLength > 13) throw new RangeError('bad CCM nonce length');
    this.lengthField = 15 - nonceLength;
    this.ecb = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(BLOCK)).setAutoPadding(false);
    this.expected = EXPECTED_TAG.subarray(0, tagLength);
  }

  /**
   * Encrypts `plaintext` into `out` at `offset`: the ciphertext, then the tag (tagLength bytes).
   * `nonce` is read at `nonceOffset` (nonceLength bytes); `plaintext` is at most 65535 bytes, `aad`
   * shorter than 65280.
   */
  seal(nonce: Buffer, nonceOffset: number, aad: Buffer, plaintext: Buffer, out: Buffer, offset: number): void {
    const length = plaintext.length;
    if (length > MAX_MESSAGE || aad.length > MAX_SHORT_AAD) throw new RangeError('CCM input too long');
    const macInput = this.macInput(nonce, nonceOffset, aad, length);
    plaintext.copy(macInput, macInput.length - blocks(length));
    const tag = this.mac(macInput);
    const keystream = this.keystream(nonce, nonceOffset, length);
    for (let i = 0; i < length; i++) out[offset + i] = plaintext[i] ^ keystream[BLOCK + i];
    const tagAt = offset + length;
    for (let i = 0; i < this.tagLength; i++) out[tagAt + i] = tag[i] ^ keystream[i];
  }

  /**
   * The plaintext of `ciphertext` (the tag excluded) whose tag is `tag`, or undefined when it does not
   * authenticate. The plaintext is a view into a buffer of its own (nothing else refers to it).
   */
  open(nonce: Buffer, nonceOffset: number, aad: Buffer, ciphertext: Buffer, tag: Buffer): Buffer | undefined {
    const length = ciphertext.length;
    if (length > MAX_MESSAGE || aad.length > MAX_SHORT_AAD || tag.length !== this.tagLength) return undefined;
    const keystream = this.keystream(nonce, nonceOffset, length);
    const macInput = this.macInput(nonce, nonceOffset, aad, length);
    const messageAt = macInput.length - blocks(length);
    for (let i = 0; i < length; i++) macInput[messageAt + i] = ciphertext[i] ^ keystream[BLOCK + i];
    const mac = this.mac(macInput);
    const expected = this.expected;
    for (let i = 0; i < this.tagLength; i++) expected[i] = mac[i] ^ keystream[i];
    // Constant time: no early exit on the first differing byte.
    if (!timingSafeEqual(expected, tag)) return undefined;
    return macInput.subarray(messageAt, messageAt + length);
  }

  /**
   * B_0, the encoded additional data and room for the message (RFC 3610 §2.2), every part zero-padded
   * to whole blocks; B_0 already XOR-ed with the CBC stream's chaining value (see the file comment).
   * The message bytes (before their padding) are left for the caller to fill.
   */
  private macInput(nonce: Buffer, nonceOffset: number, aad: Buffer, length: number): Buffer {
    const aadBlocks = aad.length > 0 ? blocks(2 + aad.length) : 0;
    const messageBlocks = blocks(length);
    const input = Buffer.allocUnsafe(BLOCK + aadBlocks + messageBlocks);
    // Flags: Adata, M' = (M - 2) / 2, L' = L - 1; then the nonce, then l(m) in L bytes.
    input[0] = (aad.length > 0 ? 0x40 : 0) | (((this.tagLength - 2) / 2) << 3) | (this.lengthField - 1);
    // Byte loops rather than Buffer.copy for the short fields: a copy() call costs more than 12 stores.
    const nonceLength = this.nonceLength;
    for (let i = 0; i < nonceLength; i++) input[1 + i] = nonce[nonceOffset + i];
    for (let i = 1 + nonceLength; i < BLOCK - 2; i++) input[i] = 0;
    input[14] = length >>> 8;
    input[15] = length & 0xff;
    const chain = this.chain;
    for (let i = 0; i < BLOCK; i++) input[i] ^= chain[i];
    if (aadBlocks > 0) {
      input[BLOCK] = aad.length >>> 8;
      input[BLOCK + 1] = aad.length & 0xff;
      for (let i = 0; i < aad.length; i++) input[BLOCK + 2 + i] = aad[i];
      for (let i = BLOCK + 2 + aad.length; i < BLOCK + aadBlocks; i++) input[i] = 0;
    }
    for (let i = input.length - messageBlocks + length; i < input.length; i++) input[i] = 0;
    return input;
  }

  /** The CBC-MAC of `input` (its last block: T before truncation); moves the chaining value on. */
  private mac(input: Buffer): Buffer {
    const output = this.cbc.update(input);
    this.chain = output.subarray(output.length - BLOCK);
    return this.chain;
  }

  /** S_0 .. S_n: E(A_i) for the counter blocks of a message of `length` bytes, in one call. */
  private keystream(nonce: Buffer, nonceOffset: number, length: number): Buffer {
    const count = 1 + blocks(length) / BLOCK;
    if (counterScratch.length < count * BLOCK) counterScratch = Buffer.alloc(count * BLOCK);
    const counters = counterScratch;
    // A_i: flags L' = L - 1, the nonce, i in L bytes (at most 4097 blocks: the high bytes stay zero).
    // A_0 is written whole, the others copy its first 14 bytes and put i in the last two.
    counters[0] = this.lengthField - 1;
    const nonceLength = this.nonceLength;
    for (let j = 0; j < nonceLength; j++) counters[1 + j] = nonce[nonceOffset + j];
    for (let j = 1 + nonceLength; j < BLOCK - 2; j++) counters[j] = 0;
    for (let i = 0; i < count; i++) {
      const at = i * BLOCK;
      if (i > 0) for (let j = 0; j < BLOCK - 2; j++) counters[at + j] = counters[j];
      counters[at + 14] = i >>> 8;
      counters[at + 15] = i & 0xff;
    }
    return this.ecb.update(counters.subarray(0, count * BLOCK));
  }
}
