/**
 * DTLS 1.2 server (RFC 6347) on node:crypto, as a DatagramTransport for the CoAP endpoint.
 *
 * Layers, bottom up: bytes (TLS vectors), record (record format, CID form), replay (anti-replay
 * window), cipher (CCM_8 / GCM / CBC+HMAC record protection), prf (key derivation), handshake
 * (message framing, fragmentation, reassembly), messages (message bodies), cookie (stateless
 * HelloVerifyRequest), flight (retransmission timer, datagram packing), credentials (keys,
 * certificate chains), handshake-credentials (our credentials as a handshake sees them, and their
 * re-check), negotiation (suite and certificate types), psk-key-exchange and ecdhe-key-exchange (the
 * two suite families), server-handshake (the state machine, full and abbreviated), session-data
 * (what outlives a transport, as plain data), session-cache (resumable sessions), session-store (the
 * store interface and its in-memory default), record-layer (one association's epochs, sequence
 * numbers, keys and replay window), flight-sender (our flights), client-flight (the client's
 * flights), record-backlog (records in order), credential-recheck and connection-handover (an
 * adopted connection), connection (one peer's association), client-hello (the record that starts a
 * handshake), handshake-admission (the cookie check and the half-open budget), peer-table
 * (associations by address and CID), kept-connections (handing connections over between
 * transports), store-calls (the transport's use of its store), drops (dropped records, by reason),
 * transport-options (settings, counters, events), transport (the socket).
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
