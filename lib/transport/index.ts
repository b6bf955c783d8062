/** The datagram transports below the CoAP endpoint (UDP, in-memory, plain + secure), re-exported. */

export * from './types';
export { normaliseAddress, peerKey, toPeer, SECURE_KEY_PREFIX } from './peer';
export { UdpTransport, type UdpTransportOptions } from './udp';
export {
  MemoryNetwork,
  MemoryTransport,
  createMemoryPair,
  seededRandom,
  type LinkConditions,
  type MemoryNetworkOptions,
  type MemoryNetworkStats,
  type NetworkTap,
} from './memory';
export { DualTransport, type SessionTransport } from './dual';
