import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BootstrapConfig, BootstrapConfigStore } from '../bootstrap/config';
import { MemoryBootstrapConfigStore } from '../bootstrap/config';
import type { ObjectModelLookup } from '../model/types';
import { MemoryDtlsSessionStore } from '../dtls/session-store';
import type { StoredDtlsConnection, StoredDtlsSession } from '../dtls/session-store';
import type { Registration } from '../server/registration';
import type { SecurityInfo } from '../server/security';
import type { StoredObservation } from '../server/stores';
import { Journal } from './journal';
import type { JournalOptions } from './journal';
import { MemoryObservationStore, MemoryRegistrationStore } from './memory';
import { MemorySecurityStore } from './memory-security';
import { SecretBox } from './secret-box';

/** Registrations in memory (the server's lookups stay synchronous), written through to a journal file. */
export class FileRegistrationStore extends MemoryRegistrationStore {
  constructor(private readonly journal: Journal) {
    super();
    const saved = journal.declare('registrations', { entries: () => mapEntries(this.values(), (r) => r.id) });
    for (const registration of saved.values()) void super.add(registration as Registration);
  }

  // Memory and journal change in the same tick, so the file records changes in the order they were made.

  override async add(registration: Registration): Promise<Registration | undefined> {
    const replaced = this.getByEndpointSync(registration.endpoint);
    const applied = super.add(registration);
    const writes = [this.journal.put('registrations', registration.id, registration)];
    if (replaced && replaced.id !== registration.id) writes.push(this.journal.delete('registrations', replaced.id));
    await Promise.all(writes);
    return applied;
  }

  override async update(registration: Registration): Promise<boolean> {
    if (!this.getByIdSync(registration.id)) return false;
    const applied = super.update(registration);
    await this.journal.put('registrations', registration.id, registration);
    return applied;
  }

  override async remove(registrationId: string): Promise<Registration | undefined> {
    if (!this.getByIdSync(registrationId)) return undefined;
    const removed = super.remove(registrationId);
    await this.journal.delete('registrations', registrationId);
    return removed;
  }
}

/** Observations in memory, written through to the journal: notifications are still matched after a restart. */
export class FileObservationStore extends MemoryObservationStore {
  constructor(private readonly journal: Journal) {
    super();
    const saved = journal.declare('observations', { entries: () => mapEntries(this.values(), (o) => o.id) });
    for (const observation of saved.values()) void super.add(observation as StoredObservation);
  }

  override async add(observation: StoredObservation): Promise<void> {
    const applied = super.add(observation);
    await this.journal.put('observations', observation.id, observation);
    return applied;
  }

  // One line per update: the memory store's update goes through add(), which would write it twice.
  override async update(observation: StoredObservation): Promise<void> {
    await this.add(observation);
  }

  override async remove(observationId: string): Promise<StoredObservation | undefined> {
    if (!this.getByIdSync(observationId)) return undefined;
    const removed = super.remove(observationId);
    await this.journal.delete('observations', observationId);
    return removed;
  }

  override async removeByRegistration(registrationId: string): Promise<StoredObservation[]> {
    const removed = await super.removeByRegistration(registrationId);
    await Promise.all(removed.map((observation) => this.journal.delete('observations', observation.id)));
    return removed;
  }
}

/** Device credentials in memory, written to the journal sealed (PSK keys and private keys never in clear). */
export class FileSecurityStore extends MemorySecurityStore {
  constructor(
    private readonly journal: Journal,
    private readonly collection = 'security',
  ) {
    super();
    const saved = journal.declare(collection, {
      secret: true,
      entries: () => mapEntries(this.values(), (info) => info.endpoint),
    });
    for (const info of saved.values()) void super.add(info as SecurityInfo);
  }

  override async add(info: SecurityInfo): Promise<SecurityInfo | undefined> {
    const replaced = await super.add(info);
    await this.journal.put(this.collection, info.endpoint, info);
    return replaced;
  }

  override async remove(endpoint: string): Promise<SecurityInfo | undefined> {
    const removed = await super.remove(endpoint);
    if (removed) await this.journal.delete(this.collection, endpoint);
    return removed;
  }
}

/**
 * DTLS sessions (resumable ones, and the connections a listener hands to the next one) in memory and
 * sealed in the journal: after a graceful restart devices go on with no handshake, after a crash they
 * resume their session (an abbreviated handshake) instead of a full one.
 */
export class FileDtlsSessionStore extends MemoryDtlsSessionStore {
  private readonly journal: Journal;
  private readonly collection: string;

  constructor(journal: Journal, collection = 'dtls') {
    super();
    this.journal = journal;
    this.collection = collection;
    const saved = journal.declare(collection, { secret: true, entries: () => this.entries() });
    const now = Date.now();
    for (const [key, value] of saved) {
      if (key === CONNECTIONS_KEY) super.saveConnections(value as StoredDtlsConnection[]);
      else {
        const entry = value as { session: StoredDtlsSession; expiresAt: number };
        if (entry.expiresAt > now) super.setResumable(Buffer.from(key, 'hex'), entry.session, entry.expiresAt);
      }
    }
  }

  override setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): void {
    super.setResumable(id, session, expiresAt);
    this.write(this.journal.put(this.collection, id.toString('hex'), { session, expiresAt }));
  }

  override deleteResumable(id: Buffer): void {
    super.deleteResumable(id);
    this.write(this.journal.delete(this.collection, id.toString('hex')));
  }

  override saveConnections(connections: StoredDtlsConnection[]): Promise<void> {
    super.saveConnections(connections);
    // Awaited by the closing transport: the snapshot must be on disk before the process exits.
    return this.journal.put(this.collection, CONNECTIONS_KEY, connections);
  }

  override takeConnections(): StoredDtlsConnection[] {
    const taken = super.takeConnections();
    // Adopted once at most: a second process start must not continue the same records.
    if (taken.length > 0) this.write(this.journal.delete(this.collection, CONNECTIONS_KEY));
    return taken;
  }

  private *entries(): IterableIterator<[string, unknown]> {
    yield* this.liveResumable();
    const kept = this.keptConnections();
    if (kept.length > 0) yield [CONNECTIONS_KEY, kept];
  }

  /** The DTLS transport does not wait for these writes; a failure is reported, never thrown into the handshake. */
  private write(done: Promise<void>): void {
    done.catch((err: Error) => this.onError?.(err));
  }

  onError?: (err: Error) => void;
}

const CONNECTIONS_KEY = 'kept-connections';

/** Bootstrap configurations (they hold the devices' keys: sealed) in memory and in the journal. */
export class FileBootstrapConfigStore extends MemoryBootstrapConfigStore implements BootstrapConfigStore {
  private readonly journal: Journal;
  private saved: Map<string, unknown>;
  /** The plain configurations as set, by endpoint name or pattern. */
  private readonly given = new Map<string, unknown>();
  private restoring = false;

  constructor(journal: Journal, model?: ObjectModelLookup) {
    super(model);
    this.journal = journal;
    this.saved = journal.declare('bootstrap-configs', { secret: true, entries: () => this.plainEntries() });
  }

  /** Reads back what the journal held (each configuration checked again, as when it was set); returns the problems. */
  async restore(): Promise<string[]> {
    const problems: string[] = [];
    this.restoring = true;
    try {
      for (const [key, plain] of this.saved) {
        try {
          await this.set(key, plain);
        } catch (err) {
          problems.push(`bootstrap configuration "${key}": ${(err as Error).message}`);
        }
      }
    } finally {
      this.restoring = false;
      this.saved = new Map();
    }
    return problems;
  }

  override async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    const checked = await super.set(endpointOrPattern, config);
    // What was given, as given: it is checked again (and so parsed the same way) when read back.
    this.given.set(endpointOrPattern, config);
    if (!this.restoring) await this.journal.put('bootstrap-configs', endpointOrPattern, config);
    return checked;
  }

  override async remove(endpointOrPattern: string): Promise<boolean> {
    const removed = await super.remove(endpointOrPattern);
    this.given.delete(endpointOrPattern);
    if (removed) await this.journal.delete('bootstrap-configs', endpointOrPattern);
    return removed;
  }

  private *plainEntries(): IterableIterator<[string, unknown]> {
    // Not restored yet: what the file held is still the state to keep.
    yield* this.saved;
    yield* this.given;
  }
}

/**
 * Plain records (firmware job records ...) by a key of their own, in memory and in the journal. Records are
 * copied when saved: their owner goes on changing its own object.
 */
export class FileRecordStore<T> {
  private readonly records = new Map<string, T>();

  constructor(
    private readonly journal: Journal,
    private readonly collection: string,
    private readonly keyOf: (record: T) => string,
    /** Records may carry secrets (a held write of a device's keys): sealed in the file. */
    secret = false,
  ) {
    for (const [key, value] of journal.declare(collection, { secret, entries: () => this.records.entries() }))
      this.records.set(key, value as T);
  }

  async save(record: T): Promise<void> {
    const copy = structuredClone(record);
    const key = this.keyOf(copy);
    this.records.set(key, copy);
    await this.journal.put(this.collection, key, copy);
  }

  async remove(key: string): Promise<void> {
    if (this.records.delete(key)) await this.journal.delete(this.collection, key);
  }

  async list(): Promise<T[]> {
    return [...this.records.values()].map((record) => structuredClone(record));
  }
}

function* mapEntries<T>(values: Iterable<T>, keyOf: (value: T) => string): IterableIterator<[string, unknown]> {
  for (const value of values) yield [keyOf(value), value];
}

export interface FileStoreOptions extends Omit<JournalOptions, 'secrets'> {
  /**
   * The secret secrets are sealed with (Node-RED's credential secret, or one configured). Without it, a
   * random key is generated once into `<dir>/store.key` (mode 0600) beside the data.
   */
  secret?: string;
}

/**
 * Where a server keeps its state on disk: `<dir>/<name>.journal`, and the encryption key file when no
 * secret is given. The directory is created with mode 0700.
 */
export function openJournal(dir: string, name: string, options: FileStoreOptions = {}): Journal {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = options.secret || keyFileSecret(dir);
  return Journal.open(join(dir, `${safeFileName(name)}.journal`), { ...options, secrets: new SecretBox(secret) });
}

function keyFileSecret(dir: string): string {
  const path = join(dir, 'store.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}

/**
 * A name that is safe as one file name on every platform: letters, digits, '.', '_' and '-' kept,
 * anything else (path separators, ':' of an address, ...) escaped as `%XX`, and never `.` or `..`.
 */
export function safeFileName(name: string): string {
  const escaped = Array.from(Buffer.from(name, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9._-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return escaped === '' || escaped === '.' || escaped === '..' ? `%${escaped || 'empty'}` : escaped;
}
