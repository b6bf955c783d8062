/**
 * One association's record layer: our write epoch and record sequence numbers, the keys of each
 * direction, the anti-replay window of the client's records, and the client's Connection ID on the
 * records we send. Records are protected and checked here; what they carry is the connection's business.
 */

import type { ConnectionKeys, RecordProtection } from './cipher';
import { ContentType, DTLS_1_2 } from './constants';
import {
  MAX_SEQUENCE,
  encodeInnerPlaintext,
  encodeRecord,
  recordHeaderLength,
  writeRecordHeader,
  type DtlsRecord,
} from './record';
import { ReplayWindow } from './replay';

export class RecordLayer {
  private readProtection: RecordProtection | undefined;
  private writeProtection: RecordProtection | undefined;
  private epoch = 0;

  private constructor(
    /** The client's CID when CIDs were negotiated (it may be empty: none on our records). */
    private readonly peerCid: Buffer | undefined,
    /** Next record sequence number per epoch (0 and 1). */
    private readonly writeSequence: [number, number],
    private readonly replay: ReplayWindow,
  ) {}

  /** For a new handshake: epoch 0, our epoch 0 numbering going on from the ClientHello's record number. */
  static forHandshake(peerCid: Buffer | undefined, helloRecordSequence: number): RecordLayer {
    // The stateless HelloVerifyRequest reused the first ClientHello's record number; starting
    // from the second ClientHello's keeps ours increasing for clients that check replay in epoch 0.
    return new RecordLayer(peerCid, [helloRecordSequence, 0], new ReplayWindow());
  }

  /** For a connection taken over from another transport: epoch 1 both ways from the start. */
  static adopted(
    peerCid: Buffer | undefined,
    keys: ConnectionKeys,
    nextWriteSequence: number,
    replay: ReplayWindow,
  ): RecordLayer {
    const layer = new RecordLayer(peerCid, [0, nextWriteSequence], replay);
    layer.readProtection = keys.client;
    layer.writeProtection = keys.server;
    layer.epoch = 1;
    return layer;
  }

  /** The epoch of the records we send. */
  get writeEpoch(): number {
    return this.epoch;
  }

  /** Whether the client's epoch 1 records can be read (its ChangeCipherSpec was taken). */
  get readsEpoch1(): boolean {
    return this.readProtection !== undefined;
  }

  /** Next sequence number of our epoch 1 records. */
  get nextWriteSequence(): number {
    return this.writeSequence[1];
  }

  /** Our epoch 1 record numbers are used up: the session must end. */
  get exhausted(): boolean {
    return this.writeSequence[1] > MAX_SEQUENCE;
  }

  useReadKeys(protection: RecordProtection): void {
    this.readProtection = protection;
  }

  /** From now on our records go out in epoch 1 under `protection` (undefined: none yet, as before). */
  useWriteKeys(protection: RecordProtection | undefined): void {
    this.writeProtection = protection;
    this.epoch = 1;
  }

  /** The session ended: the keys' cipher state is freed (what is sent or read after that makes it again). */
  release(): void {
    this.readProtection?.release();
    this.writeProtection?.release();
  }

  /** Whether an epoch 1 record with this number may be new (checked before decrypting). */
  isFresh(sequence: number): boolean {
    return this.replay.isFresh(sequence);
  }

  /** An epoch 1 record's plaintext, undefined when it does not authenticate. */
  decrypt(record: DtlsRecord): Buffer | undefined {
    return this.readProtection?.decrypt(record, record.fragment);
  }

  /**
   * Marks an authentic record seen; returns whether it was newer than every record before it
   * (RFC 9146 §6: only such a record may move the peer).
   */
  accept(sequence: number): boolean {
    const newest = this.replay.isNewest(sequence);
    this.replay.markSeen(sequence);
    return newest;
  }

  /** The replay window as plain data (see ReplayWindow.save). */
  saveReplay(): { highest: number; bitmap: Buffer } {
    return this.replay.save();
  }

  /** Bytes that protection (and the CID with its inner content type) add to a record of `epoch`. */
  overhead(epoch: number): number {
    const cidOverhead = this.peerCid !== undefined ? this.peerCid.length + 1 : 0;
    return epoch === 0 ? 0 : (this.writeProtection?.overhead ?? 0) + cidOverhead;
  }

  /** One record of ours, with the next sequence number of its epoch, protected in epoch 1. */
  seal(type: number, epoch: number, payload: Buffer): Buffer {
    const sequence = this.writeSequence[epoch]++;
    if (epoch === 0) return encodeRecord(type, 0, sequence, payload);
    const protection = this.writeProtection;
    if (protection === undefined) throw new Error('no keys for epoch 1');
    // The fragment is encrypted into the record's buffer after room for the header: no copy of it.
    const cid = this.peerCid;
    if (cid !== undefined && cid.length > 0) {
      const context = { type: ContentType.tls12Cid, version: DTLS_1_2, epoch, sequence, cid };
      const record = protection.encrypt(context, encodeInnerPlaintext(type, payload), recordHeaderLength(cid));
      writeRecordHeader(record, ContentType.tls12Cid, epoch, sequence, cid);
      return record;
    }
    const record = protection.encrypt({ type, version: DTLS_1_2, epoch, sequence }, payload, recordHeaderLength());
    writeRecordHeader(record, type, epoch, sequence);
    return record;
  }
}
