/** The cipher suites we implement, by IANA number and name. */

export type KeyExchange = 'psk' | 'ecdhe_ecdsa';
export type BulkCipher = 'aes-128-ccm8' | 'aes-128-gcm' | 'aes-128-cbc-sha256';

export interface CipherSuite {
  id: number;
  /** The IANA name (what `cipherSuites` in the options lists). */
  name: string;
  keyExchange: KeyExchange;
  cipher: BulkCipher;
}

/** In our order of preference when a client offers several: CCM_8 first (LwM2M mandates it), CBC last. */
export const CIPHER_SUITES: readonly CipherSuite[] = [
  { id: 0xc0ae, name: 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', keyExchange: 'ecdhe_ecdsa', cipher: 'aes-128-ccm8' },
  { id: 0xc02b, name: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', keyExchange: 'ecdhe_ecdsa', cipher: 'aes-128-gcm' },
  {
    id: 0xc023,
    name: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
    keyExchange: 'ecdhe_ecdsa',
    cipher: 'aes-128-cbc-sha256',
  },
  { id: 0xc0a8, name: 'TLS_PSK_WITH_AES_128_CCM_8', keyExchange: 'psk', cipher: 'aes-128-ccm8' },
  { id: 0x00a8, name: 'TLS_PSK_WITH_AES_128_GCM_SHA256', keyExchange: 'psk', cipher: 'aes-128-gcm' },
  { id: 0x00ae, name: 'TLS_PSK_WITH_AES_128_CBC_SHA256', keyExchange: 'psk', cipher: 'aes-128-cbc-sha256' },
];

const BY_NAME = new Map(CIPHER_SUITES.map((suite) => [suite.name, suite]));

export function suiteByName(name: string): CipherSuite | undefined {
  return BY_NAME.get(name);
}

/** CBC with HMAC: offered only when enabled (its record check is not constant-time). */
export function isCbc(suite: CipherSuite): boolean {
  return suite.cipher === 'aes-128-cbc-sha256';
}
