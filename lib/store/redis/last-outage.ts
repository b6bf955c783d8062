// The last outage of a Redis store, kept in Redis (`<prefix>last-outage`) for the instances that start later.
import type Redis from 'ioredis';
import type { StoreOutage } from '../../server/stores';

/** What reading it needs of the link: its prefix, and its commands (they fail while Redis cannot be reached). */
interface OutageReader {
  readonly prefix: string;
  readonly client: Redis;
  command<T>(run: () => Promise<T>): Promise<T>;
}

function lastOutageKey(prefix: string): string {
  return `${prefix}last-outage`;
}

/**
 * Kept in Redis for instances that start later: a device whose registration came due during the outage gets
 * the same grace from them (see RegistrationService). Two instances ending the same outage write nearly the same.
 */
export async function recordOutage(client: Redis, prefix: string, outage: StoreOutage): Promise<void> {
  await client.set(lastOutageKey(prefix), JSON.stringify(outage)).catch(() => undefined);
}

/** The outage some instance recorded last (undefined: none, or not readable). */
export async function readLastOutage(link: OutageReader): Promise<StoreOutage | undefined> {
  const text = await link.command(() => link.client.get(lastOutageKey(link.prefix)));
  if (text === null) return undefined;
  try {
    const { from, to } = JSON.parse(text) as Partial<StoreOutage>;
    return typeof from === 'number' && typeof to === 'number' ? { from, to } : undefined;
  } catch {
    return undefined;
  }
}
