// The Redis security store: device credentials shared by every instance, sealed, mirrored in memory.
import type { SecurityInfo } from '../../server/security';
import { MemorySecurityStore } from '../../server/memory-security-store';
import type { RedisLink } from './redis-link';

/** Device credentials shared by every instance, sealed in Redis, mirrored in memory (handshakes look up synchronously). */
export class RedisSecurityStore extends MemorySecurityStore {
  constructor(
    private readonly link: RedisLink,
    private readonly collection = 'security',
  ) {
    super();
    link.watch(collection, true, (ops) => this.apply(ops));
  }

  async load(): Promise<void> {
    await this.link.load(this.collection, (entries) => {
      for (const info of [...this.values()])
        if (!entries.has(info.endpoint)) this.apply([{ o: 'd', k: info.endpoint }]);
      this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
  }

  override async add(info: SecurityInfo): Promise<SecurityInfo | undefined> {
    // Checked (an identity clash throws) and applied here first, undone when Redis refuses the write.
    const replaced = await super.add(info);
    try {
      await this.link.write(this.collection, [{ o: 'p', k: info.endpoint, v: info }]);
    } catch (err) {
      await super.remove(info.endpoint);
      if (replaced) await super.add(replaced);
      throw err;
    }
    return replaced;
  }

  override async remove(endpoint: string): Promise<SecurityInfo | undefined> {
    const previous = await super.remove(endpoint);
    if (!previous) return undefined;
    try {
      await this.link.write(this.collection, [{ o: 'd', k: endpoint }]);
    } catch (err) {
      await super.add(previous);
      throw err;
    }
    return previous;
  }

  private apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): void {
    for (const op of ops) {
      if (op.o === 'd') void super.remove(op.k);
      else void super.add(op.v as SecurityInfo).catch(() => undefined);
    }
  }
}
