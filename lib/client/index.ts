/** The device side of LwM2M: one client, a fleet of simulated devices, and their building blocks. */
export {
  Lwm2mClient,
  defaultClientModel,
  type ClientState,
  type ClientStats,
  type Lwm2mClientEvents,
  type Lwm2mClientOptions,
  type ObjectChoice,
  type RetryPolicy,
} from './client';
export {
  Fleet,
  startFleet,
  parseAddressList,
  parsePortRange,
  type FleetEvents,
  type FleetOptions,
  type FleetStats,
} from './fleet';
export { ClientError } from './errors';
export { SECURITY_MODES, bootstrapDiscoverLinks, findServerAccount, type ServerAccount } from './bootstrap';
export type { ClientAttributes, ClientLwm2mVersion } from './attributes';
export { resource } from './object-tree';
export type { ExecuteInfo, InstanceSpec, ResourceContent, ResourceOptions, WriteInfo } from './object-tree';
export { NotifierTransport } from './notifier-transport';
export { downloadPackage, DownloadError, UpdateResult } from './download';
export {
  builtinImplementation,
  defaultVersionOf,
  FirmwareState,
  genericObject,
  IPSO_IDS,
  type DeviceInfo,
  type FirmwareFailureMode,
  type FirmwareOptions,
  type ObjectContext,
  type ObjectImplementation,
} from './objects';
