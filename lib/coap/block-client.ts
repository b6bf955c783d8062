/**
 * Block-wise transfers of our own requests (RFC 7959 §2.4, §2.5): the next Block1 block of a body we upload, and
 * the reassembly of a body a peer returns in Block2 blocks. Steps on an outgoing request's record; the exchange
 * layer sends what they decide.
 */
import { CodeByte, szxToSize, type BlockOption, type ParsedPacket } from './codec';
import type { OutRequest } from './peer';

/**
 * A response while we upload a body with Block1: true when the exchange goes on with another block (2.31 Continue:
 * the next one, in the size the peer asks for if smaller; 4.13 to the first block with a smaller size: start over
 * in that size).
 */
export function nextBlock1(x: OutRequest, code: number, b1: BlockOption | undefined): boolean {
  if (x.b1more && code === CodeByte.Continue) {
    let szx = x.b1szx;
    const next = x.b1off + szxToSize(szx);
    if (b1 !== undefined && b1.szx < szx) szx = b1.szx;
    x.b1szx = szx;
    x.b1off = next;
    // same token for every Block1 block: servers such as node-coap key the reassembly by token
    return true;
  }
  if (code === CodeByte.RequestEntityTooLarge && x.b1off === 0 && b1 !== undefined && b1.szx < x.b1szx) {
    x.b1szx = b1.szx; // the server wants smaller blocks: start over
    return true;
  }
  return false;
}

/**
 * A 2.xx response with Block2 to our request: takes its block into the body being reassembled. Returns the
 * payload to complete the exchange with (the whole body after the last block), undefined when the next block is
 * to be fetched, or a string: why the transfer failed.
 */
export function takeBlock2(
  x: OutRequest,
  msg: ParsedPacket,
  b2: BlockOption,
  etag: Buffer | undefined,
  now: number,
  maxBodySize: number,
): Buffer | string | undefined {
  let payload = msg.payload;
  if (x.chunks === null) {
    if (b2.num !== 0) return `unexpected Block2 NUM ${b2.num} in first response`;
    if (b2.more) {
      if (payload.length !== b2.size) return 'Block2 block shorter than its size';
      x.chunks = [payload];
      x.first = msg;
      x.firstAt = now;
      x.etag = etag;
      x.b2off = payload.length;
      x.b2szx = b2.szx;
    }
  } else {
    if (b2.num * b2.size !== x.b2off) return `unexpected Block2 NUM ${b2.num}`;
    if (x.etag !== undefined && (etag === undefined || !etag.equals(x.etag)))
      return 'representation changed during Block2 transfer (ETag)';
    x.chunks.push(payload);
    x.b2off += payload.length;
    if (x.b2off > maxBodySize) return `response body exceeds ${maxBodySize} bytes`;
    if (b2.more && payload.length !== b2.size) return 'Block2 block shorter than its size';
    x.b2szx = b2.szx;
    if (!b2.more) payload = Buffer.concat(x.chunks, x.b2off);
  }
  return b2.more ? undefined : payload;
}
