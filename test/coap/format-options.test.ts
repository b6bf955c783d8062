/**
 * Content-Format and Accept are uints of 0 to 2 bytes (RFC 7252 §5.10.3/§5.10.4). A longer value is
 * "treated like an unrecognized option" (§5.4.3): the elective Content-Format is ignored (as if
 * absent), the critical Accept gets a request 4.02 Bad Option. Never a number no format can have.
 */
import { strict as assert } from 'node:assert';
import { generate } from 'coap-packet';
import { decodeFormatOption, getAccept, getContentFormat } from '../../lib/coap/codec';
import type { IncomingRequest } from '../../lib/coap';
import { endpoints, RawPeer } from './helpers';

const THREE_BYTES = Buffer.from([0x01, 0x2d, 0x18]); // 77080 if read as a number

describe('coap: Content-Format and Accept longer than 2 bytes', () => {
  it('the codec reads 0 to 2 bytes and nothing longer', () => {
    assert.equal(decodeFormatOption(Buffer.alloc(0)), 0);
    assert.equal(decodeFormatOption(Buffer.from([40])), 40);
    assert.equal(decodeFormatOption(Buffer.from([0x2d, 0x18])), 11544);
    assert.equal(decodeFormatOption(Buffer.from([0xff, 0xff])), 65535);
    assert.equal(decodeFormatOption(THREE_BYTES), undefined);
    assert.equal(decodeFormatOption(Buffer.from([0, 0, 0, 60])), undefined);
    assert.equal(getContentFormat([{ name: 'Content-Format', value: THREE_BYTES }]), undefined);
    assert.equal(getContentFormat([{ name: 'Content-Format', value: Buffer.from([60]) }]), 60);
    assert.equal(getAccept([{ name: 'Accept', value: THREE_BYTES }]), undefined);
    assert.equal(getAccept([{ name: 17, value: Buffer.from([0x2d, 0x18]) }]), 11544);
  });

  it('requests: a long Content-Format is ignored, a long Accept is refused with 4.02', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      const seen: IncomingRequest[] = [];
      s.server.setRequestHandler((request) => {
        seen.push(request);
        return { code: '2.04' };
      });
      const post = (token: number, options: { name: string; value: Buffer }[]) =>
        raw.send(s.serverPeer, {
          code: 'POST',
          confirmable: true,
          token: Buffer.from([token]),
          options: [{ name: 'Uri-Path', value: Buffer.from('x') }, ...options],
          payload: Buffer.from('</1/0>'),
        });
      post(1, [{ name: 'Content-Format', value: THREE_BYTES }]);
      post(2, [{ name: 'Content-Format', value: Buffer.from([40]) }]);
      post(3, [{ name: 'Accept', value: THREE_BYTES }]);
      post(4, [{ name: 'Accept', value: Buffer.from([0x2d, 0x18]) }]);
      const answer = async (token: number) =>
        (await raw.waitFor((m) => m.packet.ack && m.packet.token[0] === token, 2000, `answer ${token}`)).packet;

      assert.equal((await answer(1)).code, '2.04');
      assert.equal((await answer(2)).code, '2.04');
      const refused = await answer(3);
      assert.equal(refused.code, '4.02');
      assert.equal(refused.payload.toString(), 'Accept longer than 2 bytes');
      assert.equal((await answer(4)).code, '2.04');

      assert.equal(seen.length, 3, 'the request with the long Accept never reaches the handler');
      const byToken = (token: number) => seen.find((request) => request.token[0] === token) as IncomingRequest;
      assert.equal(byToken(1).contentFormat, undefined);
      assert.equal(byToken(1).payload.toString(), '</1/0>');
      assert.equal(byToken(2).contentFormat, 40);
      assert.equal(byToken(4).accept, 11544);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('responses: a long Content-Format is ignored (the payload arrives without one), a long Accept is not read', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      raw.onMessage = (m, peer) => {
        if (m.packet.code !== '0.01') return;
        const which = m.packet.options.find((o) => o.name === 'Uri-Path')?.value.toString();
        const options =
          which === 'long-ct'
            ? [{ name: 'Content-Format', value: THREE_BYTES }]
            : which === 'long-accept'
              ? [
                  { name: 'Content-Format', value: Buffer.from([0]) },
                  { name: 'Accept', value: THREE_BYTES },
                ]
              : [{ name: 'Content-Format', value: Buffer.from([0x2d, 0x18]) }];
        peer.transport.send(
          // a piggybacked answer
          generate({
            ack: true,
            code: '2.05',
            messageId: m.packet.messageId,
            token: m.packet.token,
            options,
            payload: Buffer.from('21.5'),
          }),
          m.from,
        );
      };
      const longFormat = await s.client.request(raw.peer, { method: 'GET', pathSegments: ['long-ct'] });
      assert.equal(longFormat.code, '2.05');
      assert.equal(longFormat.contentFormat, undefined);
      assert.equal(getContentFormat(longFormat.options), undefined);
      assert.equal(longFormat.payload.toString(), '21.5');
      const longAccept = await s.client.request(raw.peer, { method: 'GET', pathSegments: ['long-accept'] });
      assert.equal(longAccept.contentFormat, 0);
      assert.equal(getAccept(longAccept.options), undefined);
      const fine = await s.client.request(raw.peer, { method: 'GET', pathSegments: ['fine'] });
      assert.equal(fine.contentFormat, 11544);
    } finally {
      await raw.close();
      await s.close();
    }
  });
});
