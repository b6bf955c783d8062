// The file security store: device credentials in memory, sealed in the journal.
import type { SecurityInfo } from '../../server/security';
import { MemorySecurityStore } from '../../server/memory-security-store';
import type { Journal } from './journal';
import { keyedEntries } from './journal';

/** Device credentials in memory, written to the journal sealed (PSK keys and private keys never in clear). */
export class FileSecurityStore extends MemorySecurityStore {
  constructor(
    private readonly journal: Journal,
    private readonly collection = 'security',
  ) {
    super();
    const saved = journal.declare(collection, {
      secret: true,
      entries: () => keyedEntries(this.values(), (info) => info.endpoint),
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
