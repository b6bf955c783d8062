/**
 * The anti-replay sliding window of RFC 6347 §4.1.2.6, 64 records wide: a record is accepted once
 * if its sequence number is newer than the highest seen, or within the window and not seen yet.
 * Check before decrypting, mark only after the record authenticated (so forged records cannot
 * move the window).
 */
export const REPLAY_WINDOW_SIZE = 64;
const WINDOW_MASK = (1n << BigInt(REPLAY_WINDOW_SIZE)) - 1n;

export class ReplayWindow {
  /** Highest sequence number accepted so far; -1 before the first. */
  private highest = -1;
  /** Bit i set: sequence number highest - i was accepted. */
  private seen = 0n;

  isFresh(sequence: number): boolean {
    if (sequence > this.highest) return true;
    const age = this.highest - sequence;
    if (age >= REPLAY_WINDOW_SIZE) return false;
    return ((this.seen >> BigInt(age)) & 1n) === 0n;
  }

  /** Newer than every record accepted so far (RFC 9146 §6: only such a record may move a peer's address). */
  isNewest(sequence: number): boolean {
    return sequence > this.highest;
  }

  /** The window as plain data (to hand a connection over to another transport). */
  save(): { highest: number; bitmap: Buffer } {
    const bitmap = Buffer.alloc(8);
    bitmap.writeBigUInt64BE(this.seen);
    return { highest: this.highest, bitmap };
  }

  /** A window as `save` left it. */
  static restore(highest: number, bitmap: Buffer): ReplayWindow {
    if (!Number.isSafeInteger(highest) || highest < -1 || bitmap.length !== 8) throw new Error('bad replay window');
    const window = new ReplayWindow();
    window.highest = highest;
    window.seen = highest < 0 ? 0n : bitmap.readBigUInt64BE(0) & WINDOW_MASK;
    return window;
  }

  markSeen(sequence: number): void {
    if (sequence > this.highest) {
      const shift = this.highest < 0 ? REPLAY_WINDOW_SIZE : sequence - this.highest;
      this.seen = shift >= REPLAY_WINDOW_SIZE ? 1n : ((this.seen << BigInt(shift)) | 1n) & WINDOW_MASK;
      this.highest = sequence;
    } else {
      const age = this.highest - sequence;
      if (age < REPLAY_WINDOW_SIZE) this.seen |= 1n << BigInt(age);
    }
  }
}
