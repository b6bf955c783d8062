/**
 * The AES objects (AesCcm) of the most recently used CCM keys, a bounded number: a session that is
 * busy keeps its key schedules, an idle one holds only its key bytes.
 *
 * Why: an AesCcm holds two node:crypto cipher objects (OpenSSL contexts with their key schedules) and a
 * batch of keystreams (1.3 KB of it: 8 records x 5 blocks x 16 bytes, each way). A session with both keys'
 * objects made holds 9.4-9.8 KB more RSS, 2.1 KB of it JS heap (`node --expose-gc build/bench/dtls-records.js
 * --memory 1500`); kept for every session, that would be paid by each DTLS session, most of which (LwM2M
 * devices) send a record every few minutes. Made again on the next
 * record after eviction, they cost two cipher creations once, about what the node:crypto CCM cipher made
 * per record cost: a key used too rarely to stay cached costs what it did.
 *
 * Least recently used first out, through an intrusive doubly linked list (no Map, no allocation per use).
 */

import { AesCcm } from './ccm';

/**
 * Keys (the client's and the server's of each session) whose AES objects stay made: 2048 busy sessions, about
 * 20 MB (4096 keys at about 4.8 KB each). 50,000 sessions cycling through the cache measured 0.8 KB more RSS per
 * session than their bare keys (`--memory 50000` above), about 40 MB: what the allocator keeps of evicted ones.
 */
const CCM_CACHED_KEYS = 4096;

/** One CCM key, with its AesCcm while the cache holds it. */
export class CcmKey {
  /** Set while cached. */
  ccm: AesCcm | undefined;
  /** Neighbours in the cache's use order (newer: towards the most recently used). */
  newer: CcmKey | undefined;
  older: CcmKey | undefined;

  constructor(
    readonly key: Buffer,
    readonly tagLength: number,
  ) {}
}

export class CcmKeyCache {
  private newest: CcmKey | undefined;
  private oldest: CcmKey | undefined;
  private count = 0;

  constructor(private readonly capacity: number) {}

  /** Keys whose AES objects are made. */
  get size(): number {
    return this.count;
  }

  /** The key's AesCcm (made if the key has none, evicting the least recently used beyond capacity). */
  get(entry: CcmKey): AesCcm {
    const ccm = entry.ccm;
    if (ccm !== undefined) {
      if (entry !== this.newest) {
        this.unlink(entry);
        this.pushNewest(entry);
      }
      return ccm;
    }
    const made = new AesCcm(entry.key, entry.tagLength);
    entry.ccm = made;
    this.pushNewest(entry);
    this.count++;
    if (this.count > this.capacity && this.oldest !== undefined) this.release(this.oldest);
    return made;
  }

  /** Drops the key's AES objects (the session ended); a later get() makes them again. */
  release(entry: CcmKey): void {
    if (entry.ccm === undefined) return;
    entry.ccm = undefined;
    this.unlink(entry);
    this.count--;
  }

  private pushNewest(entry: CcmKey): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = entry;
    this.newest = entry;
    this.oldest ??= entry;
  }

  private unlink(entry: CcmKey): void {
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else this.newest = entry.older;
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    entry.newer = undefined;
    entry.older = undefined;
  }
}

/** The process's cache (every DTLS transport's sessions share it: records are handled one at a time). */
export const ccmKeyCache = new CcmKeyCache(CCM_CACHED_KEYS);
