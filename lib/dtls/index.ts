/**
 * DTLS 1.2 server (RFC 6347) on node:crypto, as a DatagramTransport for the CoAP endpoint.
 *
 * Layers, bottom up: bytes (TLS vectors), record (record format, CID form), replay (anti-replay
 * window), cipher (CCM_8 / GCM / CBC+HMAC record protection), prf (key derivation), handshake
 * (message framing, fragmentation, reassembly), messages (message bodies), cookie (stateless
 * HelloVerifyRequest), flight (retransmission), credentials (keys, certificate chains),
 * server-handshake (the state machine, full and abbreviated), session-cache (resumable sessions),
 * session-store (what outlives a transport: resumable sessions and the established connections
 * that `close({ keepSessions: true })` hands over to the next transport), connection (one peer's
 * association), half-open (the budget of handshakes in progress), drops (dropped records, by
 * reason), transport-options (settings, counters, events), transport (the socket).
 */
export {
  CONNECTION_ID_LENGTH,
  DtlsTransport,
  HANDSHAKE_PMTU,
  type DtlsCloseOptions,
  type DtlsServerOptions,
  type DtlsStats,
  type DtlsTransportEvents,
} from './transport';
export { CIPHER_SUITES, type CipherSuite } from './suites';
export { DROP_REASONS, type DropReason, type DropReport } from './drops';
export {
  MemoryDtlsSessionStore,
  WRITE_SEQUENCE_GAP,
  type DtlsSessionStore,
  type MemoryDtlsSessionStoreOptions,
  type SessionCredential,
  type StoredDtlsConnection,
  type StoredDtlsSession,
} from './session-store';
