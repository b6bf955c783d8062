// The Redis bootstrap configuration store: configurations shared by every instance, sealed, mirrored in memory.
import type { BootstrapConfig } from '../../bootstrap/config';
import { MemoryBootstrapConfigStore } from '../../bootstrap/config';
import type { ObjectModelLookup } from '../../model/types';
import type { RedisLink } from './redis-link';

/** Bootstrap configurations (sealed: they hold device keys), shared and mirrored. */
export class RedisBootstrapConfigStore extends MemoryBootstrapConfigStore {
  static readonly collection = 'bootstrap-configs';

  constructor(
    private readonly link: RedisLink,
    model?: ObjectModelLookup,
  ) {
    super(model);
    // A configuration another instance stored that does not pass the checks here is reported, not dropped unseen.
    link.watch(RedisBootstrapConfigStore.collection, true, (ops) => {
      void this.apply(ops).then((problems) => problems.forEach((problem) => link.emit('problem', problem)));
    });
  }

  /** Reads every configuration back; returns the ones that no longer pass the checks. */
  async load(): Promise<string[]> {
    let problems: string[] = [];
    await this.link.load(RedisBootstrapConfigStore.collection, async (entries) => {
      problems = await this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
    return problems;
  }

  override async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    const checked = await super.set(endpointOrPattern, config);
    await this.link.write(RedisBootstrapConfigStore.collection, [{ o: 'p', k: endpointOrPattern, v: config }]);
    return checked;
  }

  override async remove(endpointOrPattern: string): Promise<boolean> {
    const removed = await super.remove(endpointOrPattern);
    if (removed) await this.link.write(RedisBootstrapConfigStore.collection, [{ o: 'd', k: endpointOrPattern }]);
    return removed;
  }

  private async apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): Promise<string[]> {
    const problems: string[] = [];
    for (const op of ops) {
      try {
        if (op.o === 'd') await super.remove(op.k);
        else await super.set(op.k, op.v);
      } catch (err) {
        problems.push(`bootstrap configuration "${op.k}": ${(err as Error).message}`);
      }
    }
    return problems;
  }
}
