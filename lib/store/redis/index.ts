// The Redis stores: every store a server or bootstrap server needs, shared by the instances of a cluster through
// one Redis and mirrored in memory by each, and the link (connections, outages, cluster bus) they share.
// What `lib/store/redis` names.
export { RedisLink } from './redis-link';
export type { RedisLinkOptions } from './redis-link';
export { RedisRegistrationStore } from './registrations';
export { RedisObservationStore } from './observations';
export { RedisSecurityStore } from './security';
export { RedisDtlsSessionStore } from './dtls-sessions';
export { RedisBootstrapConfigStore } from './bootstrap-configs';
export { RedisRecordStore } from './records';
