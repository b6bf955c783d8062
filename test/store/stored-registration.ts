// A registration record as the stores hold it, for store tests (memory, file, Redis) that put one in directly.
import type { Registration } from '../../lib/server/registration';

/** A registration record as the stores hold it (id `id-<endpoint>`), for tests that put one in a store or in Redis. */
export function storedRegistration(
  endpoint: string,
  lifetime: number,
  lastUpdateAt: number,
  fields: Partial<Registration> = {},
): Registration {
  return {
    id: `id-${endpoint}`,
    endpoint,
    lifetime,
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    address: '127.0.0.1',
    port: 5683,
    peerKey: `127.0.0.1:${endpoint}`,
    rootPath: '',
    objects: {},
    supportedContentFormats: [],
    additionalAttributes: {},
    registeredAt: lastUpdateAt,
    lastUpdateAt,
    ...fields,
  };
}
