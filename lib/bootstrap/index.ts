/** The bootstrap server's public surface: the server, its configuration model and provisioning. */
export {
  BootstrapServer,
  DEFAULT_BOOTSTRAP_OPTIONS,
  DEFAULT_BOOTSTRAP_PORT,
  DEFAULT_BOOTSTRAP_SECURE_PORT,
} from './bootstrap-server';
export type {
  BootstrapFailedEvent,
  BootstrapFinishedEvent,
  BootstrapPeer,
  BootstrapServerEvents,
  BootstrapServerOptions,
  BootstrapStartedEvent,
} from './bootstrap-server';
export {
  BootstrapConfigError,
  MemoryBootstrapConfigStore,
  SECURITY_MODE_VALUE,
  endpointPattern,
  parseBootstrapConfig,
} from './config';
export type {
  AclEntry,
  AccountSecurity,
  BootstrapAccountConfig,
  BootstrapConfig,
  BootstrapConfigStore,
  ContentFormatChoice,
  SecurityModeName,
  ServerAccountConfig,
} from './config';
export { buildPlan } from './plan';
export type { BootstrapPlan, PlannedWrite, ProvisionedServer, WriteKind } from './plan';
export { BootstrapSession, BootstrapStepError } from './session';
export type { BootstrapStep, BootstrapSummary, SessionState } from './session';
export { ProvisioningConfigStore } from './provisioning';
export type { DefaultBootstrapConfig, Provisioning } from './provisioning';
export { bootstrapConfigToPlain, parseBootstrapBatch, type BatchEntry } from './batch';
