// The Redis registration store: registrations in Redis, mirrored in memory by every instance; expiry claimed once
// in the cluster.
import type { Registration } from '../../server/registration';
import type { StoreOutage } from '../../server/stores';
import { StoreUnreachableError } from '../../server/stores';
import { MemoryRegistrationStore } from '../../server/memory-stores';
import type { RedisLink } from './redis-link';

/**
 * Registrations: every instance keeps a mirror in memory (lookups stay synchronous on the request
 * path) kept current from Redis: written through, other instances' changes applied as they are
 * published, everything re-read after an outage. Each entry also records its owner (the instance the
 * device talks to). Expiry is claimed atomically, so a registration expires once in the cluster.
 *
 * While Redis is away, an Update of a registration is taken into the mirror only and written when Redis is back,
 * before anything is read back (unless the registration is gone from Redis by then, or was updated later there):
 * the device is answered 2.04 and stays registered, with its observations. An Update is the device saying it is
 * alive (and where it is now); refusing it made every device of the fleet register again after the outage, and
 * lose its observations. A Register or De-register still fails while Redis is away (a new registration must be
 * known to the whole cluster at once).
 */
export class RedisRegistrationStore extends MemoryRegistrationStore {
  static readonly collection = 'registrations';
  /** Updates kept only in the mirror while Redis was away, by registration id. */
  private readonly held = new Map<string, Registration>();

  constructor(private readonly link: RedisLink) {
    super();
    link.watch(RedisRegistrationStore.collection, false, (ops) => this.apply(ops));
    link.beforeReadBack(() => this.writeHeld());
  }

  /** Updates taken while Redis was away and not written yet. */
  get heldUpdates(): number {
    return this.held.size;
  }

  /** Expiry waits while Redis is away and until this mirror has been read again. */
  get reachable(): boolean {
    return this.link.upToDate;
  }

  onRestored(listener: (outage: StoreOutage) => void): () => void {
    this.link.on('restored', listener);
    return () => this.link.off('restored', listener);
  }

  lastOutage(): StoreOutage | undefined {
    return this.link.lastOutage();
  }

  /** Reads every registration (at start, and after Redis comes back). */
  async load(): Promise<void> {
    await this.link.load(RedisRegistrationStore.collection, (entries) => {
      for (const registration of [...this.values()])
        if (!entries.has(registration.id)) this.apply([{ o: 'd', k: registration.id }]);
      this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
  }

  // Applied here at once (read-your-writes) and undone if Redis refuses the write; the change channel then
  // brings every change, this instance's too, in Redis's order.

  override async add(registration: Registration): Promise<Registration | undefined> {
    const replaced = this.getByEndpointSync(registration.endpoint);
    const ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }> = [
      { o: 'p', k: registration.id, v: this.entry(registration) },
    ];
    if (replaced && replaced.id !== registration.id) ops.push({ o: 'd', k: replaced.id });
    const replacedOwner = replaced && this.link.ownerOf(replaced.id);
    void super.add(registration);
    if (replaced && replaced.id !== registration.id) this.link.setOwner(replaced.id, undefined);
    this.link.setOwner(registration.id, this.link.instanceId);
    try {
      await this.link.write(RedisRegistrationStore.collection, ops);
      if (replaced) this.held.delete(replaced.id);
    } catch (err) {
      void super.remove(registration.id);
      this.link.setOwner(registration.id, undefined);
      if (replaced) {
        void super.add(replaced);
        this.link.setOwner(replaced.id, replacedOwner);
      }
      throw err;
    }
    return replaced;
  }

  override async update(registration: Registration): Promise<boolean> {
    const previous = this.getByIdSync(registration.id);
    if (!previous) return false;
    const previousOwner = this.link.ownerOf(registration.id);
    void super.update(registration);
    this.link.setOwner(registration.id, this.link.instanceId);
    try {
      await this.link.write(RedisRegistrationStore.collection, [
        { o: 'p', k: registration.id, v: this.entry(registration) },
      ]);
      this.held.delete(registration.id);
    } catch (err) {
      if (err instanceof StoreUnreachableError) {
        // Written when Redis is back (see the class comment); the mirror has it now.
        this.held.set(registration.id, registration);
        return true;
      }
      void super.update(previous);
      this.link.setOwner(registration.id, previousOwner);
      throw err;
    }
    return true;
  }

  /** The Updates taken while Redis was away, written before it is read back (each only if still the newest). */
  private async writeHeld(): Promise<void> {
    const collection = RedisRegistrationStore.collection;
    for (const [id, registration] of [...this.held]) {
      const encoded = this.link.encode(collection, this.entry(registration));
      await this.link.command(() =>
        this.link.client.eval(
          WRITE_IF_NEWER_SCRIPT,
          1,
          this.link.key(collection),
          id,
          encoded,
          String(registration.lastUpdateAt),
          String(registration.lifetimeWrittenAt ?? -1),
          this.link.changesChannel,
          this.link.changeMessage(collection, [{ o: 'p', k: id, v: encoded }]),
        ),
      );
      if (this.held.get(id) === registration) this.held.delete(id);
    }
  }

  override async remove(registrationId: string): Promise<Registration | undefined> {
    const previous = this.getByIdSync(registrationId);
    if (!previous) return undefined;
    const previousOwner = this.link.ownerOf(registrationId);
    void super.remove(registrationId);
    this.link.setOwner(registrationId, undefined);
    try {
      await this.link.write(RedisRegistrationStore.collection, [{ o: 'd', k: registrationId }]);
      this.held.delete(registrationId);
    } catch (err) {
      void super.add(previous);
      this.link.setOwner(registrationId, previousOwner);
      throw err;
    }
    return previous;
  }

  /**
   * Removes the registration only if it was not updated since (`lastUpdateAt`) and no lifetime was written into it
   * since (`lifetimeWrittenAt`: an instance whose mirror is a moment behind must not expire it on the old lifetime),
   * and only for the one instance that gets there first: how expiry happens once in a cluster.
   */
  async removeIfUnchanged(
    registrationId: string,
    lastUpdateAt: number,
    lifetimeWrittenAt?: number,
  ): Promise<Registration | undefined> {
    const current = this.getByIdSync(registrationId);
    const claimed = (await this.link.command(() =>
      this.link.client.eval(
        CLAIM_SCRIPT,
        1,
        this.link.key(RedisRegistrationStore.collection),
        registrationId,
        String(lastUpdateAt),
        String(lifetimeWrittenAt ?? -1),
      ),
    )) as number;
    if (claimed !== 1) return undefined;
    void super.remove(registrationId);
    this.held.delete(registrationId);
    this.link.setOwner(registrationId, undefined);
    // Removed in Redis: it expired, whatever happens to the news. Instances that miss it (Redis lost right now)
    // drop it when they read everything back.
    await this.link.announce(RedisRegistrationStore.collection, [{ o: 'd', k: registrationId }]).catch(() => undefined);
    return current;
  }

  private entry(registration: Registration): unknown {
    return { r: registration, o: this.link.instanceId };
  }

  private apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): void {
    for (const op of ops) {
      if (op.o === 'd') {
        void super.remove(op.k);
        this.link.setOwner(op.k, undefined);
        continue;
      }
      const { r: registration, o: owner } = op.v as { r: Registration; o: string };
      if (this.getByIdSync(registration.id)) void super.update(registration);
      else void super.add(registration);
      this.link.setOwner(registration.id, owner);
    }
  }
}

/**
 * Removes a registration if its stored lastUpdateAt and lifetimeWrittenAt (-1: none) are the ones given: 1 when
 * removed, 0 otherwise.
 */
const CLAIM_SCRIPT = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local entry = cjson.decode(v)
if tonumber(entry.r.lastUpdateAt) ~= tonumber(ARGV[2]) then return 0 end
local written = entry.r.lifetimeWrittenAt
if type(written) ~= 'number' then written = -1 end
if written ~= tonumber(ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/**
 * Writes a registration held while Redis was away, if it is still there and not updated later (by another instance
 * since Redis came back), and tells every instance: 1 when written, 0 otherwise. Newer: a later lastUpdateAt (an
 * Update), or the same one with a later lifetimeWrittenAt (-1: none; a lifetime the server wrote meanwhile, which
 * changes no lastUpdateAt).
 */
const WRITE_IF_NEWER_SCRIPT = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local entry = cjson.decode(v)
local stored = tonumber(entry.r.lastUpdateAt)
local held = tonumber(ARGV[3])
if stored > held then return 0 end
if stored == held then
  local written = entry.r.lifetimeWrittenAt
  if type(written) ~= 'number' then written = -1 end
  if written >= tonumber(ARGV[4]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`;
