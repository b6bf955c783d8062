import { randomBytes } from 'node:crypto';
import type { SecurityStore } from '../server/security';
import { endpointPattern } from './config';
import type { BootstrapConfig, BootstrapConfigStore } from './config';

/** The configuration for devices with none of their own (e.g. set in the editor): one DM server account. */
export interface DefaultBootstrapConfig {
  /** Endpoint names it applies to: a name, `*`/`?` globs or /regex/ (default `*`). */
  pattern: string;
  serverUri: string;
  /** 'nosec', or 'psk': a fresh key for each device, identity = its endpoint name. */
  securityMode: 'nosec' | 'psk';
  lifetime: number;
  binding: string;
}

export interface Provisioning {
  /** The DM server's security store (looked up when needed: config nodes start in any order). */
  dmSecurity?: () => SecurityStore | undefined;
  defaultConfig?: DefaultBootstrapConfig;
}

/**
 * The configurations a bootstrap server hands out, in front of the stored ones: the editor's default for
 * devices without one (with a key generated per device for PSK, then kept as that device's configuration
 * so a second bootstrap gets the same key), and PSK accounts copied into the DM server's security store as
 * they are stored, so a provisioned device can register over DTLS at once.
 */
export class ProvisioningConfigStore implements BootstrapConfigStore {
  private readonly defaultPattern: RegExp | null | undefined;

  constructor(
    private readonly inner: BootstrapConfigStore,
    private readonly options: Provisioning,
  ) {
    if (options.defaultConfig) this.defaultPattern = endpointPattern(options.defaultConfig.pattern || '*');
  }

  async get(endpoint: string): Promise<BootstrapConfig | undefined> {
    const stored = await this.inner.get(endpoint);
    if (stored) return stored;
    const fallback = this.options.defaultConfig;
    if (!fallback || !this.appliesTo(endpoint)) return undefined;
    const account: Record<string, unknown> = {
      shortServerId: 1,
      uri: fallback.serverUri,
      securityMode: fallback.securityMode,
      lifetime: fallback.lifetime,
      binding: fallback.binding,
    };
    if (fallback.securityMode === 'psk') {
      account.pskIdentity = endpoint;
      account.pskKey = randomBytes(16).toString('hex');
    }
    // Stored as the device's own: the same key again if it bootstraps twice, listed with the others.
    return this.set(endpoint, { servers: [account] });
  }

  async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    const stored = await this.inner.set(endpointOrPattern, config);
    const dmSecurity = this.options.dmSecurity?.();
    if (dmSecurity && endpointPattern(endpointOrPattern) === null) {
      for (const server of stored.servers) {
        if (server.securityMode === 'psk' && server.pskIdentity && server.pskKey) {
          await dmSecurity.add({
            endpoint: endpointOrPattern,
            mode: 'psk',
            identity: server.pskIdentity,
            key: server.pskKey,
          });
        }
      }
    }
    return stored;
  }

  remove(endpointOrPattern: string): Promise<boolean> {
    return this.inner.remove(endpointOrPattern);
  }

  list(): Promise<Array<{ key: string; config: BootstrapConfig }>> {
    return this.inner.list();
  }

  private appliesTo(endpoint: string): boolean {
    if (this.defaultPattern === null) return endpoint === this.options.defaultConfig?.pattern;
    if (!this.defaultPattern) return false;
    this.defaultPattern.lastIndex = 0;
    return this.defaultPattern.test(endpoint);
  }
}
