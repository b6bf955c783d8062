// The journal: a crash-safe key-value file of JSON lines, compacted by an atomic rename; what the file stores write to.
import {
  close,
  closeSync,
  fchmodSync,
  fdatasync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  write,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import type { SkippedCount } from '../problems';
import type { SecretBox } from '../secret-box';
import { fromJson, toJson } from '../secret-box';

export interface JournalOptions {
  /** Where secrets are sealed; required when a collection is declared secret. */
  secrets?: SecretBox;
  /**
   * fdatasync after each batch of writes (default true): a write is acknowledged only once it is on
   * disk. Batches form by themselves under load (group commit), so throughput stays high.
   */
  sync?: boolean;
  /** Rewrites the file once it holds this many superseded lines and more than live ones (default 10,000). */
  compactAfterDeadLines?: number;
  /**
   * Entries that could not be read back (a torn last line after a kill, a secret sealed with another key), counted,
   * or the file failing (no count).
   */
  onSkipped?: (reason: string, counted?: SkippedCount) => void;
}

/** What a collection's owner gives the journal so it can rewrite the file from the live state. */
export interface JournalCollection {
  /** Values hold secrets: written sealed. */
  secret?: boolean;
  /** The live entries, read when the file is compacted. */
  entries(): Iterable<[key: string, value: unknown]>;
}

interface PendingWrite {
  line: string;
  done: () => void;
  failed: (err: Error) => void;
}

/**
 * A crash-safe key-value journal in one file: every change is a JSON line appended at the end
 * (`["p", collection, key, value]` or `["d", collection, key]`), read back in order at open. A kill
 * at any moment leaves at most a torn last line, which is skipped. The file is compacted by writing
 * the live state to a temporary file, syncing it, and renaming it over the journal: the rename is
 * atomic, so a reader sees the old file or the new one, never half of either. Files are mode 0600.
 *
 * The stores keep their data in memory (the server's hot paths stay synchronous) and write through
 * to the journal; each change resolves once it is written (and synced, by default).
 */
export class Journal {
  private fd: number | undefined;
  private readonly collections = new Map<string, JournalCollection>();
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private lines = 0;
  /** Live entries when last counted: counting walks every collection, so it is done once per `compactAfter` lines. */
  private countedLive = 0;
  private closed = false;
  /** Why the journal stopped taking writes (its file could not be reopened after a compaction). */
  private failure: Error | undefined;
  /** Sealed entries no secret here opens, by collection: written back as they are until replaced or deleted. */
  private readonly unopened = new Map<string, Map<string, string>>();

  private constructor(
    readonly path: string,
    private readonly options: JournalOptions,
    /** What the file held at open, by collection: the stores take their initial state from it. */
    readonly loaded: Map<string, Map<string, unknown>>,
    private readonly sealedAtLoad: Map<string, Map<string, string>>,
  ) {
    this.lines = [...loaded.values()].reduce((sum, entries) => sum + entries.size, 0);
  }

  /** Opens (or creates) the journal and reads it back (synchronously: once, when a server is created). */
  static open(path: string, options: JournalOptions = {}): Journal {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const loaded = new Map<string, Map<string, unknown>>();
    const sealed = new Map<string, Map<string, string>>();
    let skipped = 0;
    let total = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      total++;
      let entry: unknown;
      try {
        entry = fromJson(line); // Buffers written as {"$b": ...} come back as Buffers
      } catch {
        skipped++; // a torn line: the process was killed while appending it
        continue;
      }
      if (!Array.isArray(entry) || typeof entry[1] !== 'string' || typeof entry[2] !== 'string') {
        skipped++;
        continue;
      }
      const [op, collection, key] = entry as [string, string, string];
      let entries = loaded.get(collection);
      if (!entries) loaded.set(collection, (entries = new Map()));
      if (op === 'd') {
        entries.delete(key);
        sealed.get(collection)?.delete(key);
      } else if (op === 'p') {
        entries.set(key, entry[3]);
      } else if (op === 's' && typeof entry[3] === 'string') {
        // Sealed: opened when the collection is declared (the journal does not know yet which key opens it).
        entries.delete(key);
        let secret = sealed.get(collection);
        if (!secret) sealed.set(collection, (secret = new Map()));
        secret.set(key, entry[3]);
      } else skipped++;
    }
    if (skipped > 0)
      options.onSkipped?.(
        `${skipped} unreadable line${skipped === 1 ? '' : 's'} in ${path} skipped (a write cut short by a kill or a crash)`,
        { kind: 'torn-lines', count: skipped, key: `torn-lines:${path}` },
      );
    const journal = new Journal(path, options, loaded, sealed);
    journal.lines = total;
    journal.fd = openAppend(path);
    // A journal opened again on this file (a redeploy that changed the store settings) supersedes the one before:
    // that one must not rename a snapshot over the file this one now appends to.
    OPEN_JOURNALS.set(path, journal);
    // A torn last line has no newline: the next append must not be glued to it (and lost with it).
    if (text !== '' && !text.endsWith('\n')) writeSync(journal.fd, '\n');
    return journal;
  }

  /**
   * Declares a collection and returns what the file held for it (plain values as written: Buffers
   * revived, secrets opened). Entries sealed with another key are skipped and reported.
   */
  declare(name: string, collection: JournalCollection): Map<string, unknown> {
    this.collections.set(name, collection);
    const entries = new Map<string, unknown>();
    for (const [key, value] of this.loaded.get(name) ?? []) entries.set(key, value);
    const sealed = this.sealedAtLoad.get(name);
    if (sealed && sealed.size > 0) {
      const unopened = new Map<string, string>();
      for (const [key, text] of sealed) {
        try {
          if (!this.options.secrets) throw new Error('no key');
          entries.set(key, fromJson(this.options.secrets.open(text)));
        } catch {
          unopened.set(key, text);
        }
      }
      if (unopened.size > 0) {
        // Kept in the file as they are (compaction carries them): with the right secret back, they come back.
        this.unopened.set(name, unopened);
        this.options.onSkipped?.(
          `${unopened.size} encrypted entr${unopened.size === 1 ? 'y' : 'ies'} of "${name}" in ${this.path} could not ` +
            'be decrypted (written with another secret?): left out now, and kept in the file as they are',
          { kind: 'unreadable-entries', count: unopened.size, key: `unreadable-entries:${this.path}:${name}` },
        );
      }
    }
    this.loaded.delete(name);
    this.sealedAtLoad.delete(name);
    return entries;
  }

  put(collection: string, key: string, value: unknown): Promise<void> {
    this.unopened.get(collection)?.delete(key);
    const secret = this.collections.get(collection)?.secret === true;
    let line: string;
    if (secret) {
      if (!this.options.secrets) return Promise.reject(new Error(`collection "${collection}" needs an encryption key`));
      line = JSON.stringify(['s', collection, key, this.options.secrets.seal(toJson(value))]);
    } else line = `["p",${JSON.stringify(collection)},${JSON.stringify(key)},${toJson(value)}]`;
    return this.append(line);
  }

  delete(collection: string, key: string): Promise<void> {
    this.unopened.get(collection)?.delete(key);
    return this.append(JSON.stringify(['d', collection, key]));
  }

  /** Writes what is pending; resolves once it is on disk. */
  async flush(): Promise<void> {
    while (this.flushing || this.pending.length > 0) {
      if (this.flushing) await this.flushing.catch(() => undefined);
      else this.startFlush();
    }
  }

  /** Rewrites the file from the live state of every declared collection (and what is still undeclared). */
  async compact(): Promise<void> {
    await this.flush();
    this.flushing = this.rewrite();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
      // What was appended meanwhile waited for the rewrite: it goes now.
      if (this.pending.length > 0) this.startFlush();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (OPEN_JOURNALS.get(this.path) === this) OPEN_JOURNALS.delete(this.path);
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await closeAsync(fd);
  }

  private append(line: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error(`the store file ${this.path} is closed`));
    return new Promise<void>((done, failed) => {
      this.pending.push({ line, done, failed });
      if (!this.scheduled && !this.flushing) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          if (!this.flushing) this.startFlush();
        });
      }
    });
  }

  private startFlush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.flushing = this.writeBatch(batch).finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.startFlush();
    });
  }

  private async writeBatch(batch: PendingWrite[]): Promise<void> {
    try {
      const fd = this.fd;
      if (fd === undefined) throw new Error(`the store file ${this.path} is closed`);
      await writeAsync(fd, batch.map((item) => item.line).join('\n') + '\n');
      if (this.options.sync !== false) await datasyncAsync(fd);
      this.lines += batch.length;
      for (const item of batch) item.done();
    } catch (err) {
      // Part of the batch may be on disk without its newline (a full disk): the next batch must start a line.
      if (this.fd !== undefined) await writeAsync(this.fd, '\n').catch(() => undefined);
      for (const item of batch) item.failed(err as Error);
      return;
    }
    const compactAfter = this.options.compactAfterDeadLines ?? 10_000;
    if (this.lines - this.countedLive <= compactAfter) return;
    const live = this.liveCount();
    this.countedLive = live;
    const dead = this.lines - live;
    if (dead > compactAfter && dead > live) {
      await this.rewrite().catch((err: Error) =>
        this.options.onSkipped?.(`compaction of ${this.path} failed: ${err.message}`),
      );
    }
  }

  private liveCount(): number {
    let count = 0;
    for (const collection of this.collections.values()) for (const _ of collection.entries()) count++;
    for (const entries of this.loaded.values()) count += entries.size;
    for (const entries of this.sealedAtLoad.values()) count += entries.size;
    for (const entries of this.unopened.values()) count += entries.size;
    return count;
  }

  /**
   * Snapshot to `<path>.tmp`, fsync, rename over the journal, fsync the directory, reopen for appends. Written in
   * chunks without blocking the event loop; appends made meanwhile wait in `pending` and follow the snapshot (a
   * change the snapshot already holds is then written twice, which reads back the same).
   */
  private async rewrite(): Promise<void> {
    const temporary = `${this.path}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    let count = 0;
    try {
      let chunk: string[] = [];
      const write = async (line: string) => {
        chunk.push(line);
        count++;
        if (chunk.length >= 1000) {
          const text = chunk.join('\n') + '\n';
          chunk = [];
          await writeAsync(fd, text);
        }
      };
      for (const [name, collection] of this.collections) {
        for (const [key, value] of collection.entries()) {
          await write(
            collection.secret && this.options.secrets
              ? JSON.stringify(['s', name, key, this.options.secrets.seal(toJson(value))])
              : `["p",${JSON.stringify(name)},${JSON.stringify(key)},${toJson(value)}]`,
          );
        }
      }
      // Collections nobody declared in this process, and sealed entries no secret here opens, as they were.
      for (const [name, entries] of this.loaded)
        for (const [key, value] of entries)
          await write(`["p",${JSON.stringify(name)},${JSON.stringify(key)},${toJson(value)}]`);
      for (const sealed of [this.sealedAtLoad, this.unopened])
        for (const [name, entries] of sealed)
          for (const [key, text] of entries) await write(JSON.stringify(['s', name, key, text]));
      if (chunk.length > 0) await writeAsync(fd, chunk.join('\n') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (OPEN_JOURNALS.get(this.path) !== this) {
      rmSync(temporary, { force: true });
      return;
    }
    const old = this.fd;
    renameSync(temporary, this.path);
    syncDirectory(dirname(this.path));
    try {
      this.fd = openAppend(this.path);
    } catch (err) {
      // Appending to the replaced file would lose every write without a word: stop taking them instead.
      this.fd = undefined;
      this.failure = new Error(`the store file ${this.path} cannot be reopened: ${(err as Error).message}`);
      this.options.onSkipped?.(this.failure.message);
    }
    this.lines = count;
    this.countedLive = count;
    if (old !== undefined) await closeAsync(old);
  }
}

/** The journal that owns each file in this process (the one opened last). */
const OPEN_JOURNALS = new Map<string, Journal>();

const writeChunk = promisify(write);

/** write(2) may write less than asked (a full disk, a signal): the rest follows until all is written. */
async function writeAsync(fd: number, text: string): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < data.length) offset += (await writeChunk(fd, data, offset, data.length - offset)).bytesWritten;
}
const datasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

function openAppend(path: string): number {
  const fd = openSync(path, 'a', 0o600);
  fchmodSync(fd, 0o600); // a file created by an older version, or with another umask
  return fd;
}

function syncDirectory(path: string): void {
  try {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems refuse to fsync a directory; the rename is still atomic there.
  }
}

/** A collection's live entries (`JournalCollection.entries`) from its values and the key each is kept under. */
export function* keyedEntries<T>(
  values: Iterable<T>,
  keyOf: (value: T) => string,
): IterableIterator<[string, unknown]> {
  for (const value of values) yield [keyOf(value), value];
}
