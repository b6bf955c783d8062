/**
 * What device operations take and resolve with: the options of a call and the result of each operation.
 */
import type { Link } from '../../content/link-format';
import type { LwM2mNode } from '../../model/types';
import type { NotificationAttributes } from '../attributes';

/** What every device operation resolves with. */
export interface OperationResult {
  endpoint: string;
  path: string;
  /** The device's success code ('2.05', '2.04', ...). */
  code: string;
  contentFormat?: number;
  /** Round-trip time of the whole exchange (all blocks, all format retries) in ms. */
  rttMs: number;
}

export interface ReadResult extends OperationResult {
  node: LwM2mNode;
  /** The value in msg shape (see model/values toPlain). */
  value: unknown;
}

export interface CompositeReadResult extends OperationResult {
  nodes: Map<string, LwM2mNode>;
  /** Path -> msg-shaped value. */
  values: Record<string, unknown>;
}

export interface CompositeObserveResult extends CompositeReadResult {
  observationId: string;
  joined: boolean;
}

export interface DiscoverResult extends OperationResult {
  links: Link[];
}

export interface CreateResult extends OperationResult {
  /** Path of the created instance (from Location-Path, or the one we asked for). */
  instancePath?: string;
}

export interface ObserveResult extends ReadResult {
  observationId: string;
  /** True when this call joined an observation that already existed (another node, or a redeploy). */
  joined: boolean;
  /** 1.0/1.1: another owner's attributes on this path were replaced by ours (last write wins). */
  attributesReplaced?: { owner: string; attributes: string[] };
  /** 1.2: the observation already existed with its own attributes; the ones asked for were not applied. */
  attributesNotApplied?: boolean;
}

export interface RequestOptions {
  /** Content format to use instead of the negotiated one. */
  format?: number;
  timeoutMs?: number;
}

/** For what sends a value (Write, Write-Composite, Create): this call's size limit instead of the server's. */
export interface WriteLimitOptions {
  /** Bytes, of the encoded payload; Infinity: none (a firmware push). */
  maxWriteBytes?: number;
}

export interface WriteOptions extends RequestOptions, WriteLimitOptions {
  /** 'replace' (PUT, the default) or 'update' (POST: partial update of an instance). */
  mode?: 'replace' | 'update';
  /** Bytes acknowledged by the device so far, for a value sent block by block (Block1): a firmware push. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface WriteAttributesResult extends OperationResult {
  /** The Uri-Query sent ('pmin=10', ...). */
  attributes: string[];
  /**
   * In LwM2M 1.0/1.1 attributes belong to (server, path): when another owner had written different
   * ones for this path, they are replaced (last write wins) and reported here so the caller can warn.
   */
  replaced?: { owner: string; attributes: string[] };
}

export interface ObserveOptions extends RequestOptions {
  /** Who asks (a node id): the device observation is cancelled only when its last owner cancels. */
  owner?: string;
  /**
   * Notification attributes: carried in the Observe request itself for a 1.2 device (they belong to
   * that observation); written with Write-Attributes first for 1.0/1.1 (they belong to the path).
   */
  attributes?: NotificationAttributes;
}
