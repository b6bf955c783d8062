/**
 * The anti-replay sliding window of RFC 6347 §4.1.2.6, 64 records wide: a record is accepted once
 * if its sequence number is newer than the highest seen, or within the window and not seen yet.
 * Check before decrypting, mark only after the record authenticated (so forged records cannot
 * move the window).
 */
export const REPLAY_WINDOW_SIZE = 64;

export class ReplayWindow {
  /** Highest sequence number accepted so far; -1 before the first. */
  private highest = -1;
  /**
   * The 64-bit bitmap (bit i set: sequence number highest - i was accepted) as two unsigned 32-bit
   * halves: bits 0..31 and 32..63. Numbers rather than a BigInt: a BigInt shift allocates, and the
   * window is checked and moved on every record.
   */
  private low = 0;
  private high = 0;

  isFresh(sequence: number): boolean {
    if (sequence > this.highest) return true;
    const age = this.highest - sequence;
    if (age >= REPLAY_WINDOW_SIZE) return false;
    const bit = age < 32 ? (this.low >>> age) & 1 : (this.high >>> (age - 32)) & 1;
    return bit === 0;
  }

  /** Newer than every record accepted so far (RFC 9146 §6: only such a record may move a peer's address). */
  isNewest(sequence: number): boolean {
    return sequence > this.highest;
  }

  /** The window as plain data (to hand a connection over to another transport). */
  save(): { highest: number; bitmap: Buffer } {
    const bitmap = Buffer.alloc(8);
    bitmap.writeUInt32BE(this.high, 0);
    bitmap.writeUInt32BE(this.low, 4);
    return { highest: this.highest, bitmap };
  }

  /** A window as `save` left it. */
  static restore(highest: number, bitmap: Buffer): ReplayWindow {
    if (!Number.isSafeInteger(highest) || highest < -1 || bitmap.length !== 8) throw new Error('bad replay window');
    const window = new ReplayWindow();
    window.highest = highest;
    if (highest >= 0) {
      window.high = bitmap.readUInt32BE(0);
      window.low = bitmap.readUInt32BE(4);
    }
    return window;
  }

  markSeen(sequence: number): void {
    if (sequence > this.highest) {
      const shift = this.highest < 0 ? REPLAY_WINDOW_SIZE : sequence - this.highest;
      if (shift >= REPLAY_WINDOW_SIZE) {
        this.high = 0;
        this.low = 1;
      } else if (shift >= 32) {
        // (JavaScript shifts count modulo 32: a shift by 32 is handled here, as a move of the low half.)
        this.high = (this.low << (shift - 32)) >>> 0;
        this.low = 1;
      } else {
        this.high = ((this.high << shift) | (this.low >>> (32 - shift))) >>> 0;
        this.low = ((this.low << shift) | 1) >>> 0;
      }
      this.highest = sequence;
    } else {
      const age = this.highest - sequence;
      if (age < 32) this.low = (this.low | (1 << age)) >>> 0;
      else if (age < REPLAY_WINDOW_SIZE) this.high = (this.high | (1 << (age - 32))) >>> 0;
    }
  }
}
