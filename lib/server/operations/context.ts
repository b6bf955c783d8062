/**
 * What every device operation works with (the registrations, the downlink sender, the codec bridge, the
 * server's write limit) and how it finds its target: a registered device and a parsed path.
 */
import type { ObjectModel } from '../../model/object-model';
import type { LwM2mPath } from '../../model/path';
import { Lwm2mRequestError } from '../errors';
import type { Registration } from '../registration';
import type { RegistrationStore } from '../stores';
import type { DownlinkSender } from '../downlink/sender';
import type { CodecBridge } from './codec-bridge';
import { parsePath, registeredOrThrow } from './request-errors';

export interface OperationContext {
  readonly model: ObjectModel;
  readonly registrations: RegistrationStore;
  /** Where requests to devices go (queue mode, exchange reports and the cluster included). */
  readonly sender: DownlinkSender;
  readonly codec: CodecBridge;
  /** The server's options, read at each call: the write size limit a call may replace with its own. */
  readonly limits: { readonly maxWriteBytes: number };
}

export interface Target {
  registration: Registration;
  path: LwM2mPath;
}

/** The path of a call, once its endpoint name is known to be given. */
export function targetPath(endpointName: string, pathText: string): LwM2mPath {
  if (typeof endpointName !== 'string' || endpointName === '') {
    throw new Lwm2mRequestError('no endpoint given', 'bad-request');
  }
  return parsePath(pathText, endpointName);
}

/** The registered device and the parsed path; 'not-registered' when the device is not. */
export async function findTarget(
  registrations: RegistrationStore,
  endpointName: string,
  pathText: string,
): Promise<Target> {
  const path = targetPath(endpointName, pathText);
  // The memory store answers without a promise.
  const registration =
    registrations.getByEndpointSync !== undefined
      ? registrations.getByEndpointSync(endpointName)
      : await registrations.getByEndpoint(endpointName);
  return { registration: registeredOrThrow(registration, endpointName, path), path };
}
