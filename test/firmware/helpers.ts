import type { Lwm2mClient } from '../../lib/client';
import type { FirmwareOptions } from '../../lib/client/objects/firmware';
import type { FirmwareProgress } from '../../lib/firmware';
import type { Bench } from '../client/helpers';

/** A package the simulator installs as `version` (it reads `version=X` at its start). */
export function firmwarePackage(version: string, size = 6000): Buffer {
  const head = Buffer.from(`version=${version}\n`);
  const body = Buffer.alloc(Math.max(0, size - head.length));
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 255;
  return Buffer.concat([head, body]);
}

/** Short timeouts for loopback devices that answer at once. */
export const FAST_TIMEOUTS = { requestMs: 1000, downloadMs: 5000, updateMs: 5000 };

/** A registered simulated device with the Firmware Update object, quick to update and to reboot. */
export function firmwareDevice(
  bench: Bench,
  endpointName: string,
  firmware: FirmwareOptions = {},
  lwm2mVersion?: '1.0' | '1.1' | '1.2',
): Promise<Lwm2mClient> {
  return bench.registered({
    endpointName,
    objects: [5],
    firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000, ...firmware },
    ...(lwm2mVersion ? { lwm2mVersion } : {}),
  });
}

/** Collects a job's or a campaign's progress events. */
export function recorder(): { events: FirmwareProgress[]; listener: (p: FirmwareProgress) => void } {
  const events: FirmwareProgress[] = [];
  return { events, listener: (p) => events.push(p) };
}
