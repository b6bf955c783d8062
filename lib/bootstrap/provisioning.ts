/**
 * Provisioning in front of the stored bootstrap configurations: a default configuration for devices without
 * one, and the DM server's PSKs copied into its security store before a configuration is stored.
 */
import { randomBytes } from 'node:crypto';
import { SecurityInfoError } from '../server/security';
import type { PskSecurityInfo, SecurityStore } from '../server/security';
import { BootstrapConfigError, endpointPattern, parseBootstrapConfig } from './config';
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
  /**
   * Which account of a configuration is the DM server's (by its URI): only its PSK is copied into
   * `dmSecurity` (keys for other servers are theirs). Default: every PSK account.
   */
  isDmServer?: (uri: string) => boolean;
  defaultConfig?: DefaultBootstrapConfig;
  /** Configurations generated from the default, at most (default 100,000): a bound on what anyone can add. */
  maxGenerated?: number;
}

/**
 * The configurations a bootstrap server hands out, in front of the stored ones: the default for devices without
 * one (with a key generated per device for PSK, then kept as that device's configuration so a second bootstrap
 * gets the same key), and PSK accounts for the DM server copied into its security store before they are stored,
 * so a provisioned device can register over DTLS at once.
 *
 * Over plain CoAP a bootstrap request proves nothing about who asks: the default hands a key to whoever first
 * asks under a name. It therefore never replaces credentials the DM server already holds for that name; for
 * anything but a trusted commissioning network, bootstrap over DTLS with per-device bootstrap credentials.
 */
export class ProvisioningConfigStore implements BootstrapConfigStore {
  private readonly defaultPattern: RegExp | null | undefined;
  private generated = 0;

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
    if (this.generated >= (this.options.maxGenerated ?? 100_000)) return undefined;
    const account: Record<string, unknown> = {
      shortServerId: 1,
      uri: fallback.serverUri,
      securityMode: fallback.securityMode,
      lifetime: fallback.lifetime,
      binding: fallback.binding,
    };
    if (fallback.securityMode === 'psk') {
      // Never take over a name the DM server already knows credentials for.
      if (await this.options.dmSecurity?.()?.getByEndpoint(endpoint)) return undefined;
      account.pskIdentity = endpoint;
      account.pskKey = interoperableKey().toString('hex');
    }
    this.generated++;
    // Stored as the device's own: the same key again if it bootstraps twice, listed with the others.
    try {
      return await this.set(endpoint, { servers: [account] });
    } catch (err) {
      // Its name is another endpoint's PSK identity on the DM server: no default for it.
      if (err instanceof SecurityInfoError) return undefined;
      throw err;
    }
  }

  async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    const dmSecurity = this.options.dmSecurity?.();
    if (!dmSecurity || endpointPattern(endpointOrPattern) !== null) return this.inner.set(endpointOrPattern, config);
    // The DM credential first: a clash there stores nothing. (A configuration with objects only the store's
    // own model knows is checked there, and its credential added after.)
    let parsed: BootstrapConfig | undefined;
    try {
      parsed = parseBootstrapConfig(config);
    } catch {
      parsed = undefined;
    }
    const account = parsed && this.dmAccount(parsed);
    if (account) await dmSecurity.add(account.info(endpointOrPattern));
    const stored = await this.inner.set(endpointOrPattern, config);
    const late = parsed ? undefined : this.dmAccount(stored);
    if (late) await dmSecurity.add(late.info(endpointOrPattern));
    return stored;
  }

  /**
   * Checks a batch before any of it is stored: a PSK identity for the DM server that belongs to another endpoint
   * there, or to two entries of the batch. Throws BootstrapConfigError naming them.
   */
  async checkBatch(entries: Array<{ key: string; config: BootstrapConfig }>): Promise<void> {
    const dmSecurity = this.options.dmSecurity?.();
    if (!dmSecurity) return;
    const inBatch = new Map<string, string>();
    for (const { key, config } of entries) {
      const account = this.dmAccount(config);
      if (!account || endpointPattern(key) !== null) continue;
      const holder = inBatch.get(account.identity) ?? (await dmSecurity.getByPskIdentity(account.identity))?.endpoint;
      if (holder !== undefined && holder !== key)
        throw new BootstrapConfigError(
          `${key}: PSK identity "${account.identity}" already belongs to endpoint "${holder}"`,
        );
      inBatch.set(account.identity, key);
    }
  }

  /** The PSK account of a configuration that is for the DM server, if any. */
  private dmAccount(
    config: BootstrapConfig,
  ): { identity: string; info(endpoint: string): PskSecurityInfo } | undefined {
    const server = config.servers.find(
      (candidate) =>
        candidate.securityMode === 'psk' &&
        candidate.pskIdentity !== undefined &&
        candidate.pskKey !== undefined &&
        (this.options.isDmServer?.(candidate.uri) ?? true),
    );
    if (!server) return undefined;
    const identity = server.pskIdentity!;
    const key = server.pskKey!;
    return { identity, info: (endpoint) => ({ endpoint, mode: 'psk', identity, key }) };
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

/**
 * 16 random bytes whose base64url has no '-' or '_'. SenML JSON carries opaque values as base64url (RFC 8428),
 * but Wakaama's decoder (fc4c4315) reads them as standard base64 and refuses those two characters: about half of
 * all random keys. Drawing again costs well under one bit of the key's 128.
 */
function interoperableKey(): Buffer {
  for (;;) {
    const key = randomBytes(16);
    if (!/[-_]/.test(key.toString('base64url'))) return key;
  }
}
