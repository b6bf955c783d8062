// The memory implementation of the security store (security.ts): device credentials in process memory. The
// default store, and what the file and Redis security stores build on.
import type { PskSecurityInfo, RpkSecurityInfo, SecurityInfo, SecurityStore } from './security';
import { SecurityInfoError, clashMessage, publicKeyFingerprint } from './security';

/** Device credentials in process memory, indexed by endpoint, PSK identity and public key fingerprint. */
export class MemorySecurityStore implements SecurityStore {
  private readonly byEndpoint = new Map<string, SecurityInfo>();
  private readonly byPskIdentity = new Map<string, PskSecurityInfo>();
  private readonly byFingerprint = new Map<string, RpkSecurityInfo>();

  /** Synchronous lookup for the DTLS handshake's hot path (the async face is the store interface). */
  pskKeySync(identity: string): Buffer | undefined {
    return this.byPskIdentity.get(identity)?.key;
  }

  async getByEndpoint(endpoint: string): Promise<SecurityInfo | undefined> {
    return this.byEndpoint.get(endpoint);
  }

  async getByPskIdentity(identity: string): Promise<PskSecurityInfo | undefined> {
    return this.byPskIdentity.get(identity);
  }

  async getByPublicKey(spki: Buffer): Promise<RpkSecurityInfo | undefined> {
    return this.byFingerprint.get(publicKeyFingerprint(spki));
  }

  async add(info: SecurityInfo): Promise<SecurityInfo | undefined> {
    const holder =
      info.mode === 'psk'
        ? this.byPskIdentity.get(info.identity)
        : info.mode === 'rpk'
          ? this.byFingerprint.get(publicKeyFingerprint(info.publicKey))
          : undefined;
    if (holder && holder.endpoint !== info.endpoint) throw new SecurityInfoError(clashMessage(info, holder));
    const replaced = this.byEndpoint.get(info.endpoint);
    if (replaced) this.unindex(replaced);
    this.byEndpoint.set(info.endpoint, info);
    if (info.mode === 'psk') this.byPskIdentity.set(info.identity, info);
    else if (info.mode === 'rpk') this.byFingerprint.set(publicKeyFingerprint(info.publicKey), info);
    return replaced;
  }

  async remove(endpoint: string): Promise<SecurityInfo | undefined> {
    const info = this.byEndpoint.get(endpoint);
    if (info) this.unindex(info);
    return info;
  }

  async list(): Promise<SecurityInfo[]> {
    return [...this.byEndpoint.values()];
  }

  /** Every entry, without a promise (a persistent store rewriting its file). */
  values(): IterableIterator<SecurityInfo> {
    return this.byEndpoint.values();
  }

  private unindex(info: SecurityInfo): void {
    this.byEndpoint.delete(info.endpoint);
    if (info.mode === 'psk') this.byPskIdentity.delete(info.identity);
    else if (info.mode === 'rpk') this.byFingerprint.delete(publicKeyFingerprint(info.publicKey));
  }
}
