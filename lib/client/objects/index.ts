/** The built-in object implementations of the client, and the choice of one for an object definition. */
import type { ObjectDefinition } from '../../model/types';
import { connectivityObject, deviceObject, locationObject, securityObject, serverObject } from './core';
import type { DeviceInfo } from './core';
import { firmwareObject, type FirmwareOptions } from './firmware';
import { ipsoObject } from './ipso';
import type { ObjectContext, ObjectImplementation } from './types';

export { connectivityObject, deviceObject, locationObject, securityObject, serverObject } from './core';
export type { DeviceInfo, ServerObjectOptions } from './core';
export { firmwareObject, defaultVersionOf, FirmwareState } from './firmware';
export type { FirmwareOptions, FirmwareFailureMode } from './firmware';
export { genericObject } from './generic';
export { ipsoObject, IPSO_IDS } from './ipso';
export type { ObjectContext, ObjectImplementation } from './types';

export interface BuiltinOptions {
  shortServerId: number;
  defaultPmin?: number;
  defaultPmax?: number;
  device: DeviceInfo;
  supportedBinding: string;
  firmware?: FirmwareOptions;
}

/** The built-in implementation of an object: core objects 0-6, simulated IPSO objects, else generic. */
export function builtinImplementation(
  ctx: ObjectContext,
  definition: ObjectDefinition,
  options: BuiltinOptions,
): ObjectImplementation {
  switch (definition.id) {
    case 0:
      return securityObject(ctx, options.shortServerId);
    case 1:
      return serverObject(ctx, options);
    case 3:
      return deviceObject(ctx, options.device, options.supportedBinding);
    case 4:
      return connectivityObject(ctx);
    case 5:
      return firmwareObject(ctx, options.firmware);
    case 6:
      return locationObject(ctx);
    default:
      return ipsoObject(ctx, definition);
  }
}
