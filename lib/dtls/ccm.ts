/**
 * AES-128-CCM (RFC 3610), built from two AES cipher objects kept for the life of a key instead of a
 * node:crypto CCM cipher per record. DTLS uses a 12-byte nonce (RFC 6655: L = 3); 7 to 13 work.
 *
 * Why: node's `aes-128-ccm` Cipheriv takes its nonce at creation and cannot be re-keyed, so each
 * record cost a new cipher object (key schedule, EVP context, JS stream wrapper) plus setAAD, update, final
 * and getAuthTag (another native call each). In a CPU profile of section 6's DTLS requests (`node
 * build/bench/run.js --only 6 --cpu-prof`) record crypto was 41% of the server's busy time, making the cipher
 * objects alone 19%; `node build/bench/dtls-records.js` gives the per-record cost before and after.
 * Here the CBC-MAC of a record is one `aes-128-cbc` update over B_0, the additional data and the
 * message; its CTR keystream (the counter blocks A_0..A_n encrypted) comes from an `aes-128-ecb` update,
 * one for several records (below). Both objects only ever encrypt.
 *
 * The CBC object is a stream with a zero IV: its chaining value after an update is the last ciphertext
 * block it produced. To start a new MAC (which needs a zero IV) that value is XOR-ed into B_0 first,
 * which cancels it: E(B_0 XOR c XOR c) = E(B_0).
 *
 * Keystreams in batches: DTLS nonces go up by one from record to record (the explicit nonce is the
 * epoch and sequence number, RFC 6655 §3, in both directions). When a record's keystream is not at
 * hand, those of the next KEYSTREAM_BATCH nonces (the last 6 bytes read as a counter) are made in the
 * same ECB call, KEYSTREAM_BLOCKS blocks each (messages up to 64 bytes): the next records find theirs
 * made, so a record costs one native call instead of two. A keystream depends only on the key, the
 * nonce and the counter, so a batched one is the one that would have been made for the record; a
 * nonce that was not predicted costs a batch (one call, as before). A longer message gets its own.
 *
 * Callers use one instance at a time (everything here is synchronous).
 */

import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';

const BLOCK = 16;
/** The largest additional data encoded with a 2-byte length (RFC 3610 §2.2: 0 < l(a) < 2^16 - 2^8). */
const MAX_SHORT_AAD = 0xfeff;
/** The largest message we take (any length field of 2 bytes or more holds it; DTLS records are far smaller). */
const MAX_MESSAGE = 0xffff;
/** Records whose keystreams one ECB call makes. */
const KEYSTREAM_BATCH = 8;
/** Blocks of keystream made per record in a batch: S_0 (for the tag) and four (a message of up to 64 bytes). */
const KEYSTREAM_BLOCKS = 5;
/** The bytes of a nonce counted up from record to record (the DTLS sequence number). */
const NONCE_COUNTER_BYTES = 6;

/** `length` rounded up to whole blocks. */
function blocks(length: number): number {
  return (length + BLOCK - 1) & ~(BLOCK - 1);
}

/** The last 6 bytes of a nonce as a number. */
function nonceCounter(nonce: Buffer, end: number): number {
  let value = 0;
  for (let i = end - NONCE_COUNTER_BYTES; i < end; i++) value = value * 256 + nonce[i];
  return value;
}

/**
 * Scratch shared by every instance (one is used at a time, and update() copies its input), so that a
 * session holds none of its own: the input of an update (counter blocks, or a MAC's blocks when sealing),
 * grown for larger records, with its views by length in blocks (a subarray() per record costs more than
 * the crypto's own bookkeeping); and the expected tag of a record being opened.
 */
let scratch = Buffer.alloc(BLOCK * 64);
let scratchViews: Buffer[] = [];
const EXPECTED_TAG = Buffer.alloc(BLOCK);

/** The first `count` blocks of the shared scratch. */
function scratchBlocks(count: number): Buffer {
  if (scratch.length < count * BLOCK) {
    scratch = Buffer.alloc(count * BLOCK);
    scratchViews = [];
  }
  return (scratchViews[count] ??= scratch.subarray(0, count * BLOCK));
}

export class AesCcm {
  /** CTR keystream: encrypts the counter blocks. */
  private readonly ecb: Cipher;
  /** CBC-MAC: one stream whose chaining value is the block at `chainOffset` in `chain`. */
  private readonly cbc: Cipher;
  private chain: Buffer = Buffer.alloc(BLOCK);
  private chainOffset = 0;
  /** The expected tag of a record being opened (a view of EXPECTED_TAG). */
  private readonly expected: Buffer;
  /** L (RFC 3610 §2.1): the size of the length field and of the counter, 15 - the nonce length. */
  private readonly lengthField: number;

  /** The latest batch of keystreams: KEYSTREAM_BLOCKS blocks for each of KEYSTREAM_BATCH nonces. */
  private batch: Buffer | undefined;
  /** Its first nonce: the bytes before the counter, and the counter. */
  private readonly batchPrefix: Buffer;
  private batchCounter = -1;
  /** Where the keystream that keystream() returned starts in the buffer it returned. */
  private keystreamAt = 0;

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
    this.batchPrefix = Buffer.alloc(nonceLength - NONCE_COUNTER_BYTES);
  }

  /**
   * Encrypts `plaintext` into `out` at `offset`: the ciphertext, then the tag (tagLength bytes).
   * `nonce` is read at `nonceOffset` (nonceLength bytes); `plaintext` is at most 65535 bytes, `aad`
   * shorter than 65280.
   */
  seal(nonce: Buffer, nonceOffset: number, aad: Buffer, plaintext: Buffer, out: Buffer, offset: number): void {
    const length = plaintext.length;
    if (length > MAX_MESSAGE || aad.length > MAX_SHORT_AAD) throw new RangeError('CCM input too long');
    // The MAC's input is in the shared scratch: update() copies it.
    const macInput = this.macInput(nonce, nonceOffset, aad, length);
    plaintext.copy(macInput, macInput.length - blocks(length));
    const tagAt = this.mac(macInput);
    const tag = this.chain;
    const keystream = this.keystream(nonce, nonceOffset, length);
    const s = this.keystreamAt;
    for (let i = 0; i < length; i++) out[offset + i] = plaintext[i] ^ keystream[s + BLOCK + i];
    const outTag = offset + length;
    for (let i = 0; i < this.tagLength; i++) out[outTag + i] = tag[tagAt + i] ^ keystream[s + i];
  }

  /**
   * The plaintext of the `length` bytes of ciphertext at `offset` in `record`, followed there by their tag
   * (tagLength bytes), or undefined when it does not authenticate or the tag is cut short. The plaintext
   * is in a buffer nothing else refers to (small ones are cut from node's shared 8 KB pool, which a caller keeping
   * one keeps alive).
   */
  open(
    nonce: Buffer,
    nonceOffset: number,
    aad: Buffer,
    record: Buffer,
    offset: number,
    length: number,
  ): Buffer | undefined {
    const tagOffset = offset + length;
    if (length > MAX_MESSAGE || aad.length > MAX_SHORT_AAD || record.length - tagOffset !== this.tagLength) {
      return undefined;
    }
    const keystream = this.keystream(nonce, nonceOffset, length);
    const s = this.keystreamAt;
    // The plaintext in a buffer of its own (returned), and in the MAC's input in the shared scratch.
    const plaintext = Buffer.allocUnsafe(length);
    const macInput = this.macInput(nonce, nonceOffset, aad, length);
    const messageAt = macInput.length - blocks(length);
    for (let i = 0; i < length; i++) {
      const byte = record[offset + i] ^ keystream[s + BLOCK + i];
      plaintext[i] = byte;
      macInput[messageAt + i] = byte;
    }
    const tagAt = this.mac(macInput);
    const mac = this.chain;
    const expected = this.expected;
    for (let i = 0; i < this.tagLength; i++) expected[i] = mac[tagAt + i] ^ keystream[s + i];
    // Constant time: no early exit on the first differing byte.
    if (!timingSafeEqual(expected, record.subarray(tagOffset))) return undefined;
    return plaintext;
  }

  /**
   * B_0, the encoded additional data and room for the message (RFC 3610 §2.2), every part zero-padded
   * to whole blocks, in the shared scratch; B_0 already XOR-ed with the CBC stream's chaining
   * value (see the file comment). The message bytes (before their padding) are left for the caller.
   */
  private macInput(nonce: Buffer, nonceOffset: number, aad: Buffer, length: number): Buffer {
    const aadBlocks = aad.length > 0 ? blocks(2 + aad.length) : 0;
    const messageBlocks = blocks(length);
    const input = scratchBlocks(1 + (aadBlocks + messageBlocks) / BLOCK);
    // Flags: Adata, M' = (M - 2) / 2, L' = L - 1; then the nonce, then l(m) in L bytes.
    input[0] = (aad.length > 0 ? 0x40 : 0) | (((this.tagLength - 2) / 2) << 3) | (this.lengthField - 1);
    // Byte loops rather than Buffer.copy for the short fields: a copy() call costs more than 12 stores.
    const nonceLength = this.nonceLength;
    for (let i = 0; i < nonceLength; i++) input[1 + i] = nonce[nonceOffset + i];
    for (let i = 1 + nonceLength; i < BLOCK - 2; i++) input[i] = 0;
    input[14] = length >>> 8;
    input[15] = length & 0xff;
    const chain = this.chain;
    const chainAt = this.chainOffset;
    for (let i = 0; i < BLOCK; i++) input[i] ^= chain[chainAt + i];
    if (aadBlocks > 0) {
      input[BLOCK] = aad.length >>> 8;
      input[BLOCK + 1] = aad.length & 0xff;
      for (let i = 0; i < aad.length; i++) input[BLOCK + 2 + i] = aad[i];
      for (let i = BLOCK + 2 + aad.length; i < BLOCK + aadBlocks; i++) input[i] = 0;
    }
    for (let i = input.length - messageBlocks + length; i < input.length; i++) input[i] = 0;
    return input;
  }

  /**
   * Runs the CBC-MAC over `input`; its last block (T before truncation) is then the chaining value:
   * returns where it starts in `this.chain`.
   */
  private mac(input: Buffer): number {
    const output = this.cbc.update(input);
    this.chain = output;
    this.chainOffset = output.length - BLOCK;
    return this.chainOffset;
  }

  /**
   * S_0 .. S_n, E(A_i) for the counter blocks of a message of `length` bytes: from the batch when it
   * holds this nonce, else from a new batch starting at it, or (a longer message) made for it alone.
   * They start at `this.keystreamAt` in the buffer returned.
   */
  private keystream(nonce: Buffer, nonceOffset: number, length: number): Buffer {
    const count = 1 + blocks(length) / BLOCK;
    const nonceEnd = nonceOffset + this.nonceLength;
    if (count > KEYSTREAM_BLOCKS) {
      this.keystreamAt = 0;
      return this.ecb.update(this.counterBlocks(nonce, nonceOffset, 1, count));
    }
    const counter = nonceCounter(nonce, nonceEnd);
    const index = counter - this.batchCounter;
    if (this.batch !== undefined && index >= 0 && index < KEYSTREAM_BATCH && this.samePrefix(nonce, nonceOffset)) {
      this.keystreamAt = index * KEYSTREAM_BLOCKS * BLOCK;
      return this.batch;
    }
    const batch = this.ecb.update(this.counterBlocks(nonce, nonceOffset, KEYSTREAM_BATCH, KEYSTREAM_BLOCKS));
    this.batch = batch;
    this.batchCounter = counter;
    for (let i = 0; i < this.batchPrefix.length; i++) this.batchPrefix[i] = nonce[nonceOffset + i];
    this.keystreamAt = 0;
    return batch;
  }

  private samePrefix(nonce: Buffer, nonceOffset: number): boolean {
    const prefix = this.batchPrefix;
    for (let i = 0; i < prefix.length; i++) if (prefix[i] !== nonce[nonceOffset + i]) return false;
    return true;
  }

  /**
   * The counter blocks A_0 .. A_{count-1} (flags L' = L - 1, the nonce, i in L bytes) for `nonces`
   * nonces from the given one up (its last 6 bytes counted up), one after the other, in the scratch.
   */
  private counterBlocks(nonce: Buffer, nonceOffset: number, nonces: number, count: number): Buffer {
    const counters = scratchBlocks(nonces * count);
    const nonceLength = this.nonceLength;
    counters[0] = this.lengthField - 1;
    for (let j = 0; j < nonceLength; j++) counters[1 + j] = nonce[nonceOffset + j];
    for (let j = 1 + nonceLength; j < BLOCK - 2; j++) counters[j] = 0;
    // A_i: the first 14 bytes of A_0, i in the last two (a message of at most 4096 blocks).
    for (let i = 0; i < count; i++) {
      const at = i * BLOCK;
      if (i > 0) for (let j = 0; j < BLOCK - 2; j++) counters[at + j] = counters[j];
      counters[at + 14] = i >>> 8;
      counters[at + 15] = i & 0xff;
    }
    // Each next nonce's blocks: the previous nonce's (one native copy), its counter bytes plus one.
    const groupLength = count * BLOCK;
    const lastNonceByte = nonceLength; // A_i holds the nonce at bytes 1..nonceLength
    for (let n = 1; n < nonces; n++) {
      const group = n * groupLength;
      counters.copyWithin(group, group - groupLength, group);
      for (let i = 0; i < count; i++) {
        const at = group + i * BLOCK;
        for (let j = lastNonceByte; j > lastNonceByte - NONCE_COUNTER_BYTES; j--) {
          const carried = (counters[at + j] + 1) & 0xff;
          counters[at + j] = carried;
          if (carried !== 0) break;
        }
      }
    }
    return counters;
  }
}
