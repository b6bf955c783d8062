// The cluster bus over Redis: calls to another instance's server and their answers (pub/sub, sealed), the heartbeat
// that says which instances are alive, and which instance each device talks to. It runs on the Redis link.
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { ClusterBus, ClusterCall } from '../../server/cluster';
import { INSTANCE_GONE, errorFromWire, errorToWire } from '../../server/cluster';
import type { StoreUnreachableError } from '../../server/stores';
import type { SecretBox } from '../secret-box';

/** What the bus needs of the link it runs on (RedisLink). */
export interface BusConnection {
  readonly instanceId: string;
  /** Prefix of every key and channel. */
  readonly prefix: string;
  /** The command connection. */
  readonly client: Redis;
  /** Both connections are up: commands can be sent, and answers are heard. */
  readonly reachable: boolean;
  /** Runs a command, failing with a StoreUnreachableError while Redis cannot be reached. */
  command<T>(run: () => Promise<T>): Promise<T>;
  /** The error for "Redis cannot be reached now". */
  unreachable(): StoreUnreachableError;
  emit(event: 'problem', message: string): boolean;
}

interface RpcMessage {
  /** Call id. */
  id: string;
  /** Caller instance (where the answer goes). */
  from: string;
  call?: ClusterCall;
  ok?: unknown;
  err?: ReturnType<typeof errorToWire>;
}

interface PendingCall {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  to: string;
}

/**
 * One instance's side of the cluster bus. A call is published, sealed, on the callee's channel
 * (`<prefix>calls:<instanceId>`) and answered on the caller's; each instance says it is alive with a key that
 * expires after three missed heartbeats (`<prefix>alive:<instanceId>`). Which instance owns a device is kept
 * by the registration store from what it reads and hears.
 */
export class RedisClusterBus implements ClusterBus {
  private readonly pendingCalls = new Map<string, PendingCall>();
  private handler: ((message: ClusterCall) => Promise<unknown>) | undefined;
  private heartbeat?: NodeJS.Timeout;
  private readonly aliveCache = new Map<string, { alive: boolean; at: number }>();
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly link: BusConnection,
    /** Seals calls and answers like the stored secrets: a forwarded Write may carry a device's keys. */
    private readonly secrets: SecretBox,
    /** How often this instance says it is alive (ms); it counts as gone after 3 missed beats. */
    private readonly heartbeatMs: number,
  ) {}

  get instanceId(): string {
    return this.link.instanceId;
  }

  get reachable(): boolean {
    return this.link.reachable;
  }

  /** The channel this instance's calls and answers come on (the link subscribes to it). */
  get ownChannel(): string {
    return this.callsChannel(this.link.instanceId);
  }

  /** Says this instance is alive now, and again every heartbeat from now on. */
  async startHeartbeat(): Promise<void> {
    await this.beat();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => void this.beat().catch(() => undefined), this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** The link closes: calls in flight fail, the heartbeat stops, and this instance is no longer alive. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const id of [...this.pendingCalls.keys()]) this.rejectCall(id, new Error('the Redis link closed'));
    await this.link.client.del(this.aliveKey(this.link.instanceId)).catch(() => undefined);
  }

  ownerOf(registrationId: string): string | undefined {
    return this.owners.get(registrationId);
  }

  /** Kept by the registration store from what it reads and hears. */
  setOwner(registrationId: string, owner: string | undefined): void {
    if (owner === undefined) this.owners.delete(registrationId);
    else this.owners.set(registrationId, owner);
  }

  async isAlive(instanceId: string): Promise<boolean> {
    if (instanceId === this.link.instanceId) return true;
    const now = Date.now();
    const cached = this.aliveCache.get(instanceId);
    if (cached && now - cached.at < 1000) return cached.alive;
    const alive = (await this.link.command(() => this.link.client.exists(this.aliveKey(instanceId)))) === 1;
    this.aliveCache.set(instanceId, { alive, at: now });
    return alive;
  }

  serve(handler: ((message: ClusterCall) => Promise<unknown>) | undefined): void {
    this.handler = handler;
  }

  call(instanceId: string, call: ClusterCall, timeoutMs: number): Promise<unknown> {
    // The answer comes back over the subscriber: without both connections there is none to wait for.
    if (!this.link.reachable) return Promise.reject(this.link.unreachable());
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingCalls.delete(id);
        reject(new Error(`server instance ${instanceId} did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      timer.unref();
      this.pendingCalls.set(id, { resolve, reject, timer, to: instanceId });
      const message: RpcMessage = { id, from: this.link.instanceId, call };
      // Sealed like the stored secrets: a forwarded Write may carry a device's keys.
      this.link
        .command(() =>
          this.link.client.publish(this.callsChannel(instanceId), this.secrets.seal(JSON.stringify(message))),
        )
        .then(
          (receivers) => {
            if (receivers === 0)
              this.settleCall(id, undefined, {
                name: INSTANCE_GONE,
                message: `server instance ${instanceId} is not listening`,
              });
          },
          (err: Error) => this.rejectCall(id, err),
        );
    });
  }

  /** Every call in flight fails with the error `errorFor` gives for its instance (the link was lost under it). */
  failCalls(errorFor: (instanceId: string) => Error): void {
    for (const [id, pending] of [...this.pendingCalls]) this.rejectCall(id, errorFor(pending.to));
  }

  /** Says this instance is alive; calls waiting on an instance that has gone fail now, not at their time limit. */
  async beat(): Promise<void> {
    await this.link.client.set(this.aliveKey(this.link.instanceId), String(Date.now()), 'PX', this.heartbeatMs * 3);
    for (const [id, pending] of this.pendingCalls) {
      this.aliveCache.delete(pending.to);
      if (!(await this.isAlive(pending.to)))
        this.settleCall(id, undefined, { name: INSTANCE_GONE, message: `server instance ${pending.to} went away` });
    }
  }

  /** A message on this instance's channel: a call from another instance, or the answer to one of its own. */
  receive(text: string): void {
    let rpc: RpcMessage;
    try {
      rpc = JSON.parse(this.secrets.open(text)) as RpcMessage;
    } catch {
      this.link.emit('problem', 'a cluster call could not be read (another store secret?)');
      return;
    }
    if (rpc.call === undefined) {
      this.settleCall(rpc.id, rpc.ok, rpc.err);
      return;
    }
    const answer = (reply: Omit<RpcMessage, 'id' | 'from'>) =>
      void this.link.client
        .publish(
          this.callsChannel(rpc.from),
          this.secrets.seal(JSON.stringify({ id: rpc.id, from: this.link.instanceId, ...reply })),
        )
        .catch(() => undefined);
    if (!this.handler) {
      answer({ err: { name: 'Error', message: `server instance ${this.link.instanceId} is not serving` } });
      return;
    }
    this.handler(rpc.call).then(
      (ok) => answer({ ok }),
      (err: unknown) => answer({ err: errorToWire(err) }),
    );
  }

  private callsChannel(instanceId: string): string {
    return `${this.link.prefix}calls:${instanceId}`;
  }

  private aliveKey(instanceId: string): string {
    return `${this.link.prefix}alive:${instanceId}`;
  }

  private settleCall(id: string, ok: unknown, err?: ReturnType<typeof errorToWire>): void {
    if (err) return this.rejectCall(id, errorFromWire(err));
    const pending = this.pendingCalls.get(id);
    if (!pending) return;
    this.pendingCalls.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(ok);
  }

  private rejectCall(id: string, error: Error): void {
    const pending = this.pendingCalls.get(id);
    if (!pending) return;
    this.pendingCalls.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }
}
