// One instance's link to Redis: its two connections, the collections the stores keep there, outages and the
// read-back after them; the cluster bus runs on it (cluster-bus.ts).
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { ClusterBus, ClusterCall } from '../../server/cluster';
import type { StoreOutage } from '../../server/stores';
import { StoreUnreachableError } from '../../server/stores';
import type { SkippedCount } from '../problems';
import type { SecretBox } from '../secret-box';
import { fromJson, toJson } from '../secret-box';
import { RedisClusterBus } from './cluster-bus';
import { readLastOutage, recordOutage } from './last-outage';

export interface RedisLinkOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  url: string;
  /** Prefix of every key and channel (default 'lwm2m:'): several fleets can share one Redis. */
  prefix?: string;
  /** This instance: stable across its restarts (default: a random id). */
  instanceId?: string;
  /** Seals secrets (PSK keys, private keys, DTLS secrets) before they reach Redis. */
  secrets: SecretBox;
  /** How often this instance says it is alive (ms, default 2000); it counts as gone after 3 missed beats. */
  heartbeatMs?: number;
}

/** One change of a collection, as published to the other instances. */
interface ChangeMessage {
  /** The instance that made it (its own messages are ignored). */
  i: string;
  c: string;
  ops: Array<{ o: 'p' | 'd'; k: string; v?: string }>;
}

/** `own`: the change is this instance's, heard back in Redis's order. */
type ChangeListener = (ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>, own: boolean) => void;

/**
 * The connection of one instance to Redis: the command connection, a subscriber connection for the
 * change and call channels, and the cluster bus (calls, heartbeat, owners: RedisClusterBus, which this link
 * is the server's face of). Collections are Redis hashes
 * (`<prefix><collection>`): endpoint names and other keys are hash fields, never part of a key name,
 * so no name can reach into another key. Values are JSON; secret collections are sealed.
 *
 * Writes are not queued while Redis is unreachable: they fail at once with a StoreUnreachableError (a Register gets
 * 5.03 and is tried again; a flow gets the error); only the registration store keeps Updates for later (see
 * `beforeReadBack`). Reads are served from each store's memory mirror meanwhile.
 * An outage begins when either connection is lost; it ends once both are back, subscribed again, and every
 * mirror has been read again (pub/sub drops what was published while an instance was away): that read-back is
 * tried again until it works, and only then is the store `upToDate` again.
 *
 * Events: 'down' (error: Error; once per outage), 'ready' (usable: opened, or back after an outage), 'restored'
 * (outage: StoreOutage; after the read-back), 'problem' (message: string, counted?: SkippedCount: entries that
 * cannot be read, a read-back that failed).
 *
 * Every instance applies every change from the change channel, its own included: Redis publishes them in the
 * order it wrote them, so the mirrors end in Redis's order even when two instances write the same entry at once
 * (a store also applies its own change at once, for read-your-writes).
 */
export class RedisLink extends EventEmitter implements ClusterBus {
  readonly instanceId: string;
  readonly prefix: string;
  readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly watchers = new Map<string, ChangeListener>();
  private readonly secretCollections = new Set<string>();
  /** Calls between instances, their heartbeats, and who owns each device. */
  private readonly bus: RedisClusterBus;
  /** Reads every store's mirror (given to `open`): at start, and again after each outage. */
  private reload: (() => Promise<unknown>) | undefined;
  /** `open` has read the mirrors once: from then on an outage ends with a read-back. */
  private synced = false;
  /** When the current outage began (a connection lost or refused); undefined while Redis is reachable. */
  private outageSince: number | undefined;
  /** Why Redis was last unreachable (for the errors that say so). */
  private lastError: Error | undefined;
  private recovering = false;
  private lastOutageSeen: StoreOutage | undefined;
  /** Changes heard for a collection while it is read (see `load`): applied after what was read. */
  private readonly heldChanges = new Map<string, ChangeMessage[]>();
  /** What the stores wrote only to their mirror while Redis was away: written before anything is read back. */
  private readonly pendingWriters: Array<() => Promise<void>> = [];
  private closed = false;

  constructor(readonly options: RedisLinkOptions) {
    super();
    this.instanceId = options.instanceId ?? randomUUID();
    this.prefix = options.prefix ?? 'lwm2m:';
    this.client = new Redis(options.url, connectionOptions());
    this.subscriber = new Redis(options.url, { ...connectionOptions(), enableOfflineQueue: true });
    this.bus = new RedisClusterBus(this, options.secrets, options.heartbeatMs ?? 2000);
    // Every 'error' of either connection is handled here (an unhandled one would be printed by ioredis, and an
    // EventEmitter 'error' without a listener throws): each is an outage, or part of the current one.
    for (const connection of [this.client, this.subscriber]) {
      connection.on('error', (err: Error) => this.markDown(err));
      // A connection that closes (Redis stopped, the network gone) is an outage from that moment, error or not.
      connection.on('close', () => this.markDown(new Error('the connection to Redis was lost')));
      // Both back: read everything again (changes published while this instance was away are lost).
      connection.on('ready', () => this.recoverInBackground());
    }
    this.subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
  }

  /**
   * Connects both connections and subscribes. While Redis cannot be reached this waits (ioredis tries again,
   * backing off), reporting each failure as 'down': a server waits for its store rather than starting empty.
   */
  async connect(): Promise<void> {
    const ready = (connection: Redis) =>
      new Promise<void>((resolve, reject) => {
        if (connection.status === 'ready') return resolve();
        connection.once('ready', () => resolve());
        this.once('closed', () => reject(new Error('the Redis link closed before Redis could be reached')));
      });
    // Failures show up as 'error' events (reported as 'down') and retries; the promises themselves are not waited on.
    this.client.connect().catch(() => undefined);
    this.subscriber.connect().catch(() => undefined);
    await Promise.all([ready(this.client), ready(this.subscriber)]);
    await this.subscriber.subscribe(this.changesChannel, this.bus.ownChannel);
    await this.bus.startHeartbeat();
  }

  /**
   * Connects and reads every mirror (`load`), again and again until it works: Redis dropping right after the
   * connection, or a read failing, must not leave the server down until Node-RED restarts. `load` is also what
   * reads everything back after each outage. Ends (rejects) only when the link closes first.
   */
  async open(load: () => Promise<unknown>): Promise<void> {
    this.reload = load;
    for (;;) {
      try {
        await this.connect();
        this.lastOutageSeen = await readLastOutage(this);
        await load();
        break;
      } catch (err) {
        if (this.closed) throw err;
        this.emit('problem', `Redis: ${(err as Error).message}; trying again in 2 s`);
        await delay(2000);
      }
    }
    this.synced = true;
    // Lost again while reading: the outage goes on, and its end reads everything once more.
    if (this.bothReady) this.outageSince = undefined;
    else this.recoverInBackground();
    this.emit('ready');
  }

  /** Both connections are up: commands and calls can be sent, and changes are heard. */
  get reachable(): boolean {
    return this.bothReady;
  }

  /** Reachable, and every mirror read since the last outage: what the stores hold here is what Redis holds. */
  get upToDate(): boolean {
    return this.synced && this.outageSince === undefined && this.bothReady;
  }

  /** The last outage of this store: the latest this instance saw end, or one another instance recorded. */
  lastOutage(): StoreOutage | undefined {
    return this.lastOutageSeen;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.emit('closed');
    await this.bus.close();
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  key(collection: string): string {
    return `${this.prefix}${collection}`;
  }

  /** Declares a collection: its changes by other instances go to `listener`. */
  watch(collection: string, secret: boolean, listener: ChangeListener): void {
    this.watchers.set(collection, listener);
    if (secret) this.secretCollections.add(collection);
  }

  encode(collection: string, value: unknown): string {
    const json = toJson(value);
    return this.secretCollections.has(collection) ? this.options.secrets.seal(json) : json;
  }

  decode(collection: string, text: string): unknown {
    return fromJson(this.secretCollections.has(collection) ? this.options.secrets.open(text) : text);
  }

  /** Every entry of a collection; entries that cannot be read (another key) are reported and left out. */
  private async readAll(collection: string): Promise<Map<string, unknown>> {
    const raw = await this.command(() => this.client.hgetall(this.key(collection)));
    const entries = new Map<string, unknown>();
    let unreadable = 0;
    for (const [key, text] of Object.entries(raw)) {
      try {
        entries.set(key, this.decode(collection, text));
      } catch {
        unreadable++;
      }
    }
    if (unreadable > 0) {
      const counted: SkippedCount = {
        kind: 'unreadable-entries',
        count: unreadable,
        key: `unreadable-entries:${this.key(collection)}`,
      };
      this.emit(
        'problem',
        `${unreadable} entr${unreadable === 1 ? 'y' : 'ies'} of ${this.key(collection)} could not be read (another store secret?)`,
        counted,
      );
    }
    return entries;
  }

  /**
   * Reads a collection into a store's mirror: `apply` gets everything Redis holds. Changes heard meanwhile are held
   * and applied after it, in Redis's order: the subscription is older than the read, so a change is either in what
   * was read (applying it again changes nothing) or comes after it. Without this, a change applied just before an
   * older read's answer was lost from the mirror (an instance writing while another reads everything back after an
   * outage: a device registered twice in Redis).
   */
  async load(collection: string, apply: (entries: Map<string, unknown>) => void | Promise<void>): Promise<void> {
    const held: ChangeMessage[] = [];
    this.heldChanges.set(collection, held);
    try {
      await apply(await this.readAll(collection));
    } finally {
      if (this.heldChanges.get(collection) === held) this.heldChanges.delete(collection);
      for (const change of held) this.deliver(change);
    }
  }

  /**
   * `write` is called when Redis is back after an outage, before anything is read back: what a store kept only in
   * its mirror meanwhile (Updates of registrations) reaches Redis first, so the read-back does not undo it.
   */
  beforeReadBack(write: () => Promise<void>): void {
    this.pendingWriters.push(write);
  }

  /** The change message for `ops` (encoded values), as published on the change channel. */
  changeMessage(collection: string, ops: Array<{ o: 'p' | 'd'; k: string; v?: string }>): string {
    const message: ChangeMessage = { i: this.instanceId, c: collection, ops };
    return JSON.stringify(message);
  }

  get changesChannel(): string {
    return `${this.prefix}changes`;
  }

  /** Writes (HSET/HDEL) and tells the other instances, in one transaction. */
  async write(collection: string, ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): Promise<void> {
    if (ops.length === 0) return;
    const key = this.key(collection);
    const encoded = ops.map((op) =>
      op.o === 'p' ? { o: op.o, k: op.k, v: this.encode(collection, op.v) } : { o: op.o, k: op.k },
    );
    const transaction = this.client.multi();
    for (const op of encoded) {
      if (op.o === 'p') transaction.hset(key, op.k, op.v!);
      else transaction.hdel(key, op.k);
    }
    transaction.publish(this.changesChannel, this.changeMessage(collection, encoded));
    const results = await this.command(() => transaction.exec());
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0] as Error;
  }

  /** Tells the other instances of a change already written (by a script). */
  async announce(collection: string, ops: Array<{ o: 'p' | 'd'; k: string; v?: string }>): Promise<void> {
    const message = this.changeMessage(collection, ops);
    await this.command(() => this.client.publish(this.changesChannel, message));
  }

  /**
   * Runs a command on the command connection. While Redis cannot be reached, or when the connection is lost under
   * it, it fails with a StoreUnreachableError that says so (ioredis's own words, "Stream isn't writeable and
   * enableOfflineQueue options is false", name no store); an error Redis answered with is passed on as it is.
   */
  async command<T>(run: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') throw this.unreachable();
    try {
      return await run();
    } catch (err) {
      if ((err as Error).name === 'ReplyError') throw err;
      throw this.unreachable(err as Error);
    }
  }

  /** The error for "Redis cannot be reached now", with its cause. */
  unreachable(cause = this.lastError): StoreUnreachableError {
    return new StoreUnreachableError(`Redis at ${this.where} is unreachable${cause ? ` (${cause.message})` : ''}`);
  }

  /** Where Redis is, without credentials (for errors). */
  private get where(): string {
    try {
      const url = new URL(this.options.url);
      return `${url.hostname}:${url.port || '6379'}`;
    } catch {
      return 'the configured address';
    }
  }

  // ---- cluster bus (cluster-bus.ts): the server's ClusterBus is this link ----------------------------

  ownerOf(registrationId: string): string | undefined {
    return this.bus.ownerOf(registrationId);
  }

  /** Kept by the registration store from what it reads and hears. */
  setOwner(registrationId: string, owner: string | undefined): void {
    this.bus.setOwner(registrationId, owner);
  }

  isAlive(instanceId: string): Promise<boolean> {
    return this.bus.isAlive(instanceId);
  }

  serve(handler: ((message: ClusterCall) => Promise<unknown>) | undefined): void {
    this.bus.serve(handler);
  }

  call(instanceId: string, call: ClusterCall, timeoutMs: number): Promise<unknown> {
    return this.bus.call(instanceId, call, timeoutMs);
  }

  /** A change of a collection, or a message of the cluster bus (calls and answers, on this instance's channel). */
  private onMessage(channel: string, text: string): void {
    if (channel !== this.changesChannel) return this.bus.receive(text);
    let change: ChangeMessage;
    try {
      change = JSON.parse(text) as ChangeMessage;
    } catch {
      return;
    }
    const held = this.heldChanges.get(change.c);
    if (held) held.push(change);
    else this.deliver(change);
  }

  private get bothReady(): boolean {
    return this.client.status === 'ready' && this.subscriber.status === 'ready';
  }

  private deliver(change: ChangeMessage): void {
    const listener = this.watchers.get(change.c);
    if (!listener) return;
    try {
      listener(
        change.ops.map((op) => (op.o === 'p' ? { o: op.o, k: op.k, v: this.decode(change.c, op.v!) } : op)),
        change.i === this.instanceId,
      );
    } catch (err) {
      this.emit('problem', `a change of ${this.key(change.c)} could not be applied: ${(err as Error).message}`);
    }
  }

  private markDown(err: Error): void {
    if (this.closed) return;
    this.lastError = err;
    if (this.outageSince !== undefined) return;
    this.outageSince = Date.now();
    // Answers to calls in flight come over the subscriber: none will. The owner may still have acted on the device.
    this.bus.failCalls(
      (to) =>
        new StoreUnreachableError(
          `the link to Redis at ${this.where} was lost while server instance ${to} handled the request: ` +
            `its outcome is unknown (${err.message})`,
        ),
    );
    this.emit('down', err);
  }

  /** Starts the recovery; what it throws (a listener of 'restored' or 'ready') is a problem, never a rejection. */
  private recoverInBackground(): void {
    this.recover().catch((err: Error) => this.emit('problem', `Redis: recovering from the outage: ${err.message}`));
  }

  /**
   * Ends an outage once both connections are back: subscribed again first (so no change falls between the
   * read-back and the subscription), alive again, what the stores kept only in memory written, then every mirror
   * read again, tried again (backing off up to 10 s) until it works or the link is lost again (whose end starts
   * this once more).
   */
  private async recover(): Promise<void> {
    if (this.recovering || this.closed || !this.synced || this.outageSince === undefined || !this.bothReady) return;
    this.recovering = true;
    try {
      for (let attempt = 1; !this.closed && this.outageSince !== undefined && this.bothReady; attempt++) {
        try {
          await this.subscriber.subscribe(this.changesChannel, this.bus.ownChannel);
          await this.bus.beat();
          for (const write of this.pendingWriters) await write();
          await this.reload?.();
          if (!this.bothReady) continue; // lost again meanwhile: what was read may be incomplete
        } catch (err) {
          if (this.closed) return;
          const waitMs = Math.min(500 * 2 ** (attempt - 1), 10_000);
          this.emit(
            'problem',
            `Redis: reading the stores back after the outage failed (attempt ${attempt}): ${(err as Error).message}; ` +
              `trying again in ${Math.round(waitMs / 100) / 10} s`,
          );
          await delay(waitMs);
          continue;
        }
        const outage: StoreOutage = { from: this.outageSince, to: Date.now() };
        this.outageSince = undefined;
        this.lastOutageSeen = outage;
        // Told in the same turn as the store becomes usable again: the registration service grants the outage's
        // grace before any expiry sweep can find the store reachable (an await here let one expire the registrations
        // that came due during the outage).
        this.emit('restored', outage);
        this.emit('ready');
        await recordOutage(this.client, this.prefix, outage);
      }
    } finally {
      this.recovering = false;
    }
  }
}

/** How both connections behave (a new object each: ioredis keeps its own). */
function connectionOptions(): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    // A command caught by a lost connection fails after the first attempts to reconnect (about 0.6 s), rather
    // than being sent again whenever Redis returns (an expiry claimed minutes late).
    maxRetriesPerRequest: 1,
    // Back off up to 2 s between attempts, for ever: Redis coming back is recovered from.
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
    // RESP2, as ioredis 5 spoke (ioredis 6 defaults to RESP3): the store needs nothing of RESP3, and RESP2 is what
    // every Redis, Redis-compatible server and proxy understands (a proxy refusing HELLO would stop the link).
    protocol: 2 as const,
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
