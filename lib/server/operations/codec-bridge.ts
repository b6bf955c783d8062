/**
 * The bridge between device operations and the content codecs: msg-shaped values to nodes, nodes to payloads in a
 * format, payloads back to nodes (a response without Content-Format in its default format), each failure turned
 * into the operation's error.
 */
import { decodeNode, decodeNodes, encodeNode } from '../../content';
import { ContentFormat } from '../../content/types';
import type { LwM2mPath } from '../../model/path';
import type { LwM2mNode, ObjectModelLookup, ResourceDefinition } from '../../model/types';
import { fromPlain } from '../../model/values';
import { defaultDecodeFormat } from '../content-negotiation';
import { keyOf } from '../observation-service';
import type { Registration } from '../registration';
import { badRequest, invalidResponse } from './request-errors';
import { isNode } from './requests';

export class CodecBridge {
  constructor(private readonly model: ObjectModelLookup) {}

  resourceDefinition(path: LwM2mPath): ResourceDefinition | undefined {
    if (path.objectId === undefined || path.resourceId === undefined) return undefined;
    return this.model.getResource(path.objectId, path.resourceId);
  }

  isMultiple(path: LwM2mPath): boolean {
    return this.resourceDefinition(path)?.multiple ?? false;
  }

  /** A node as is, or the node a msg-shaped value stands for at `path`. */
  toNode(value: unknown, path: LwM2mPath, registration: Registration): LwM2mNode {
    if (isNode(value)) return value;
    try {
      return fromPlain(value, path, this.model);
    } catch (err) {
      throw badRequest((err as Error).message, registration, path);
    }
  }

  encode(node: LwM2mNode, format: number, path: LwM2mPath, registration: Registration): Buffer {
    try {
      return encodeNode(node, format, path, this.model);
    } catch (err) {
      throw badRequest(`cannot encode the value for ${path}: ${(err as Error).message}`, registration, path);
    }
  }

  /** A payload of `path` (a response or a notification); without a format, in the one 1.0 clients send. */
  decode(payload: Buffer, format: number | undefined, path: LwM2mPath): LwM2mNode {
    return decodeNode(payload, format ?? defaultDecodeFormat(path, this.resourceDefinition(path)), path, this.model);
  }

  /** An Observe-Composite notification: every requested path's node (SenML CBOR when it says no format). */
  decodeNotification(payload: Buffer, format: number | undefined, paths: readonly LwM2mPath[]): Map<string, LwM2mNode> {
    return decodeNodes(payload, format ?? ContentFormat.SENML_CBOR, this.model, paths);
  }

  /** The answer to `operation` (Read, Observe): an undecodable one is the operation's 'invalid-response'. */
  decodeResponse(
    payload: Buffer,
    format: number | undefined,
    path: LwM2mPath,
    endpoint: string,
    operation: string,
  ): LwM2mNode {
    try {
      return this.decode(payload, format, path);
    } catch (err) {
      throw invalidResponse(err, operation, endpoint, path);
    }
  }

  decodeComposite(
    payload: Buffer,
    format: number,
    paths: LwM2mPath[],
    endpoint: string,
    operation: 'Read-Composite' | 'Observe-Composite',
  ): Map<string, LwM2mNode> {
    try {
      return decodeNodes(payload, format, this.model, paths);
    } catch (err) {
      throw invalidResponse(err, operation, endpoint, keyOf(paths));
    }
  }
}
