/**
 * Push or pull: the delivery method of a firmware job with method 'auto', from what the device says it takes
 * (/5/0/9 Delivery Method, /5/0/8 Protocol Support) and how the package would travel.
 */
import type { FirmwareDeviceRegistration } from './device';
import { Failure } from './failure';
import type { FirmwareJobOptions } from './job-types';
import { PROTOCOL_SCHEMES } from './results';

/**
 * `delivery` and `protocolSupport` are the values read (undefined when the device does not have them); push when
 * the device takes both and there is an image. Throws the Failure of a device that cannot take the package.
 */
export function chooseMethod(
  options: FirmwareJobOptions,
  registration: FirmwareDeviceRegistration,
  delivery: unknown,
  protocolSupport: unknown,
): 'push' | 'pull' {
  const protocols = toNumbers(protocolSupport);
  const canPush = delivery === undefined || delivery === 1 || delivery === 2;
  const canPull = delivery === undefined || delivery === 0 || delivery === 2;
  const scheme =
    options.uri !== undefined
      ? safeScheme(options.uri)
      : options.pullVia === 'http' || options.pullVia === 'https'
        ? `${options.pullVia}:`
        : registration.security
          ? 'coaps:'
          : 'coap:';
  const protocolOk =
    protocols === undefined ||
    protocols.some((p) => PROTOCOL_SCHEMES[p] === scheme) ||
    (protocols.length === 0 && scheme === 'coap:');
  if (options.uri !== undefined) {
    if (!canPull)
      throw new Failure('the device takes pushed packages only (/5/0/9), and a URI was given', 'unsupported-delivery');
    if (!protocolOk) {
      throw new Failure(
        `the device does not support ${scheme} downloads (/5/0/8 ${JSON.stringify(protocols)})`,
        'unsupported-protocol',
      );
    }
    return 'pull';
  }
  if (canPush) return 'push';
  if (!protocolOk) {
    throw new Failure(
      `the device pulls only, and not over ${scheme} (/5/0/8 ${JSON.stringify(protocols)})`,
      'unsupported-protocol',
    );
  }
  return 'pull';
}

function safeScheme(uri: string): string {
  try {
    return new URL(uri).protocol;
  } catch {
    return '';
  }
}

/** A multiple resource's values (`{ 0: 0, 1: 2 }`), a single value, or undefined. */
function toNumbers(value: unknown): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object') return Object.values(value as Record<string, unknown>).map(Number);
  return [Number(value)];
}
