/**
 * application/octet-stream (content format 42): the raw bytes of one opaque resource or resource
 * instance. Decoding returns the payload itself (no copy).
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { checkNodeAtPath } from './tree';
import { singleValueTarget } from './text';
import { describe, fail, toBuffer } from './values';

export const opaqueCodec: NodeCodec = {
  format: ContentFormat.OPAQUE,
  name: 'application/octet-stream',
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
    const type = singleValueTarget(path, model, 'application/octet-stream', '4.00');
    if (type !== undefined && type !== 'opaque') {
      fail(`application/octet-stream is only for opaque resources; ${path} is of type ${type}`);
    }
    return path.level === 3
      ? { kind: 'resource', id: path.resourceId as number, type: 'opaque', value: bytes }
      : { kind: 'resourceInstance', id: path.resourceInstanceId as number, type: 'opaque', value: bytes };
  },
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
    checkNodeAtPath(node, path);
    if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
      fail(`application/octet-stream carries a single value; cannot encode a ${node.kind} node at ${path}`, '4.06');
    }
    const type = singleValueTarget(path, model, 'application/octet-stream', '4.06') ?? node.type;
    if (type !== 'opaque')
      fail(`application/octet-stream is only for opaque resources; ${path} is of type ${type}`, '4.06');
    if (!(node.value instanceof Uint8Array)) fail(`${path}: ${describe(node.value)} does not fit resource type opaque`);
    return toBuffer(node.value);
  },
};
