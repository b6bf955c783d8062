// The file stores: every store a server or bootstrap server needs, kept in memory and written through to one
// journal file per server (lib/store/file/journal.ts); secrets sealed. What `lib/store/file` names.
export { FileRegistrationStore } from './registrations';
export { FileObservationStore } from './observations';
export { FileSecurityStore } from './security';
export { FileDtlsSessionStore } from './dtls-sessions';
export { FileBootstrapConfigStore } from './bootstrap-configs';
export { FileRecordStore } from './records';
export { openJournal, safeFileName } from './open-journal';
export type { FileStoreOptions } from './open-journal';
export { Journal } from './journal';
export type { JournalCollection, JournalOptions } from './journal';
