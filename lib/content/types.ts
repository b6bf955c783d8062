/** The content layer's shared vocabulary: Content-Format numbers, the codec interface and the codec error. */
import { Lwm2mError } from '../errors';
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';

/** CoAP Content-Format numbers used by LwM2M (IANA CoAP registry). */
export const ContentFormat = {
  TEXT: 0,
  LINK_FORMAT: 40,
  OPAQUE: 42,
  CBOR: 60,
  SENML_JSON: 110,
  SENML_CBOR: 112,
  SENML_ETCH_JSON: 320,
  SENML_ETCH_CBOR: 322,
  OLD_TLV: 1542,
  OLD_JSON: 1543,
  TLV: 11542,
  JSON: 11543,
  LWM2M_CBOR: 11544,
} as const;

export type ContentFormatNumber = (typeof ContentFormat)[keyof typeof ContentFormat];

/** A decoded value with the time the device stamped on it (SenML/OMA JSON time series), if any. */
export interface TimestampedNode {
  path: LwM2mPath;
  node: LwM2mNode;
  /** Absolute time of the value, when the payload carried one. */
  time?: Date;
}

/**
 * One codec per content format. `path` is the path the payload belongs to (the request's target);
 * `model` types the values (a TLV integer is only an integer because the model says so).
 */
export interface NodeCodec {
  readonly format: number;
  readonly name: string;
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode;
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer;
}

/**
 * Bad or unsupported content. `coapCode` is the code to answer a device with
 * ('4.00' malformed, '4.15' unsupported format, '4.06' cannot encode as asked).
 */
export class ContentCodecError extends Lwm2mError {
  override name = 'ContentCodecError';
  declare readonly code: '4.00' | '4.06' | '4.15';
  constructor(message: string, coapCode: '4.00' | '4.06' | '4.15' = '4.00') {
    super(message, coapCode);
  }

  /** The CoAP code to answer with: the base's `code`, under the name the codecs' callers know. */
  get coapCode(): '4.00' | '4.06' | '4.15' {
    return this.code;
  }
}
