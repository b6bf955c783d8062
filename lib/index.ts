/**
 * The package's library face, for use outside Node-RED (scripts, tests, benchmarks): the LwM2M
 * server and bootstrap server, the DTLS server and security store, the stores (memory, file, Redis) and their
 * factory, the device simulator, the object model and the content codecs.
 */
export { Lwm2mServer, DEFAULT_SERVER_OPTIONS, NO_FLOOD_LIMITS, executeArguments } from './server/lwm2m-server';
export type {
  Lwm2mServerOptions,
  Lwm2mServerEvents,
  OperationResult,
  ReadResult,
  DiscoverResult,
  CreateResult,
  ObserveResult,
  CompositeReadResult,
  CompositeObserveResult,
  WriteAttributesResult,
  Notification,
  SendReport,
} from './server/lwm2m-server';
export { Lwm2mError } from './errors';
export { Lwm2mRequestError } from './server/errors';
export type { ObservationEndCause } from './server/observation-service';
export type { LimitKind, LimitReport } from './server/limit-warnings';
export type { RegistrationLimits } from './server/registration-admission';
export type { DropReason, DropReport } from './dtls/drops';
export type { Registration, Lwm2mVersion } from './server/registration';
export type { NotificationAttributes } from './server/attributes';
export type { RegistrationStore, ObservationStore, StoredObservation } from './server/stores';
export { MemoryRegistrationStore, MemoryObservationStore } from './server/memory-stores';
export type { SecureListenerOptions } from './server/lwm2m-server';
export {
  SecurityInfoError,
  parseSecurityFile,
  parseSecurityInfo,
  securityInfoToPlain,
  type SecurityInfo,
  type SecurityStore,
} from './server/security';
export { MemorySecurityStore } from './server/memory-security-store';
export {
  DtlsTransport,
  MemoryDtlsSessionStore,
  type DtlsServerOptions,
  type DtlsSessionStore,
  type DtlsStats,
} from './dtls';
export { DtlsClientTransport, type PskCredentials } from './client/dtls-transport';
export * from './bootstrap';
export * from './client';
export * from './model';
export * as content from './content';
export { ContentFormat, ContentCodecError } from './content/types';
export {
  openServerStores,
  openBootstrapStores,
  type StoreKind,
  type StoreSettings,
  type StoreFactoryOptions,
  type StoreMessages,
  type StoreProblemReporter,
  type PersistentStores,
  type ServerStores,
  type BootstrapStores,
} from './store/factory';
export type { RedisLink, RedisLinkOptions } from './store/redis';
export type { SkippedCount } from './store/problems';
export { CoapEndpoint } from './coap/endpoint';
export { UdpTransport } from './transport/udp';
export * from './firmware';
