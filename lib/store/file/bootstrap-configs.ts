// The file bootstrap configuration store: configurations in memory, sealed in the journal.
import type { BootstrapConfig, BootstrapConfigStore } from '../../bootstrap/config';
import { MemoryBootstrapConfigStore } from '../../bootstrap/config';
import type { ObjectModelLookup } from '../../model/types';
import type { Journal } from './journal';

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
