import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { connectionKeys, keyBlockLength } from '../../lib/dtls/cipher';
import { ccmKeyCache } from '../../lib/dtls/ccm-cache';
import { ClientFlight } from '../../lib/dtls/client-flight';
import { ContentType, HandshakeType } from '../../lib/dtls/constants';
import { decodeInnerPlaintext, parseRecords } from '../../lib/dtls/record';
import { RecordLayer } from '../../lib/dtls/record-layer';
import { ReplayWindow } from '../../lib/dtls/replay';

/** Two record layers of one association: ours, and one that reads what ours writes (the keys swapped). */
function pair(peerCid: Buffer | undefined): { ours: RecordLayer; theirs: RecordLayer } {
  const keys = connectionKeys('aes-128-ccm8', randomBytes(keyBlockLength('aes-128-ccm8')));
  return {
    ours: RecordLayer.adopted(peerCid, keys, 5, new ReplayWindow()),
    theirs: RecordLayer.adopted(undefined, { client: keys.server, server: keys.client }, 0, new ReplayWindow()),
  };
}

describe('DTLS record layer (one association)', () => {
  it('numbers epoch 0 records on from the ClientHello and protects nothing there', () => {
    const layer = RecordLayer.forHandshake(undefined, 7);
    assert.equal(layer.writeEpoch, 0);
    assert.equal(layer.readsEpoch1, false);
    const [first, second] = parseRecords(
      Buffer.concat([
        layer.seal(ContentType.handshake, 0, Buffer.from('a')),
        layer.seal(ContentType.alert, 0, Buffer.from('b')),
      ]),
    );
    assert.deepEqual([first.sequence, second.sequence], [7, 8]);
    assert.equal(first.fragment.toString(), 'a');
    assert.equal(layer.overhead(0), 0);
  });

  it('seals epoch 1 records that the other side opens, each number once', () => {
    const { ours, theirs } = pair(undefined);
    const [record] = parseRecords(ours.seal(ContentType.applicationData, 1, Buffer.from('hello')));
    assert.equal(record.sequence, 5);
    assert.equal(ours.nextWriteSequence, 6);
    assert.ok(theirs.isFresh(record.sequence));
    assert.equal(theirs.decrypt(record)?.toString(), 'hello');
    assert.equal(theirs.accept(record.sequence), true, 'the newest so far');
    assert.equal(theirs.isFresh(record.sequence), false, 'a replay');
    const tampered = { ...record, fragment: Buffer.from(record.fragment) };
    tampered.fragment[0] ^= 1;
    assert.equal(theirs.decrypt(tampered), undefined);
  });

  it('release() frees the cipher state of both directions; the keys still work after it', () => {
    const { ours, theirs } = pair(undefined);
    const before = ccmKeyCache.size;
    const [record] = parseRecords(ours.seal(ContentType.applicationData, 1, Buffer.from('one')));
    assert.equal(theirs.decrypt(record)?.toString(), 'one');
    assert.equal(ccmKeyCache.size, before + 1, 'one key (ours to write, theirs to read)');
    ours.release();
    theirs.release();
    assert.equal(ccmKeyCache.size, before);
    const [next] = parseRecords(ours.seal(ContentType.applicationData, 1, Buffer.from('two')));
    assert.equal(theirs.decrypt(next)?.toString(), 'two');
    ours.release();
  });

  it("puts the client's CID on our records, with the inner content type", () => {
    const cid = Buffer.from('a1b2', 'hex');
    const { ours, theirs } = pair(cid);
    const [record] = parseRecords(ours.seal(ContentType.applicationData, 1, Buffer.from('x')), cid.length);
    assert.equal(record.type, ContentType.tls12Cid);
    assert.equal(record.cid?.toString('hex'), 'a1b2');
    const inner = decodeInnerPlaintext(theirs.decrypt(record) ?? Buffer.alloc(0));
    assert.equal(inner?.type, ContentType.applicationData);
    assert.equal(inner?.content.toString(), 'x');
    assert.equal(ours.overhead(1), theirs.overhead(1) + cid.length + 1, 'protection, the CID, the inner type');
  });

  it('writes epoch 1 once it has the keys of our flight', () => {
    const keys = connectionKeys('aes-128-gcm', randomBytes(keyBlockLength('aes-128-gcm')));
    const layer = RecordLayer.forHandshake(undefined, 0);
    assert.throws(() => layer.seal(ContentType.handshake, 1, Buffer.alloc(1)), /no keys for epoch 1/);
    layer.useWriteKeys(keys.server);
    layer.useReadKeys(keys.client);
    assert.equal(layer.writeEpoch, 1);
    assert.equal(layer.readsEpoch1, true);
    assert.equal(parseRecords(layer.seal(ContentType.handshake, 1, Buffer.alloc(1)))[0].epoch, 1);
  });
});

describe("DTLS client flights (a connection's view)", () => {
  const fragment = (messageSeq: number, fragmentOffset = 0) => ({
    msgType: HandshakeType.finished,
    length: 1,
    messageSeq,
    fragmentOffset,
    fragment: Buffer.from([messageSeq]),
  });

  it('recognises a repeat of the latest flight, and reassembles the next', () => {
    const flight = new ClientFlight(1); // the ClientHello was message 1
    assert.equal(flight.repeatsLast(fragment(1)), true);
    assert.equal(flight.isPast(fragment(1)), true);
    assert.deepEqual(
      flight.add(fragment(2)).map((message) => message.messageSeq),
      [2],
    );
    assert.equal(flight.isPast(fragment(2)), true);
    assert.equal(flight.repeatsLast(fragment(2)), false, 'its flight is not over yet');
    flight.ended();
    assert.equal(flight.repeatsLast(fragment(2)), true);
    assert.equal(flight.repeatsLast(fragment(2, 1)), false, 'only the start of the message counts');
  });
});
