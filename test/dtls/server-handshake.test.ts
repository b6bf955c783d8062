import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { ByteReader, uint16, uint8, vector } from '../../lib/dtls/bytes';
import { AlertDescription, ExtensionType, HandshakeType } from '../../lib/dtls/constants';
import { spkiOf } from '../../lib/dtls/credentials';
import { HandshakeFailure } from '../../lib/dtls/failure';
import { parseClientHello } from '../../lib/dtls/messages';
import { ServerHandshake, type HandshakeCredentials, type HandshakeOptions } from '../../lib/dtls/server-handshake';
import { CIPHER_SUITES } from '../../lib/dtls/suites';
import type { Peer } from '../../lib/transport/types';
import { encodeClientHello } from './helpers';

const peer: Peer = { address: '10.0.0.1', port: 5000, key: '10.0.0.1:5000' };
const serverKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;

const pskOnly: HandshakeCredentials = {
  suites: CIPHER_SUITES.filter((suite) => suite.keyExchange === 'psk'),
  pskKey: () => Buffer.from('key'),
  trustedCertificates: [],
};

/** Raw keys both ways plus PSK (no X.509). */
const rawKeysAndPsk: HandshakeCredentials = {
  ...pskOnly,
  suites: [...CIPHER_SUITES],
  rawPublicKey: { spki: spkiOf(serverKey), privateKey: serverKey },
  clientRawPublicKey: () => 'device',
};

function handshakeFor(
  credentials: HandshakeCredentials,
  hello: { cipherSuites: number[]; extensions?: Array<[number, Buffer]> },
  options: HandshakeOptions = {},
): ServerHandshake {
  const body = encodeClientHello(hello);
  return new ServerHandshake(credentials, peer, parseClientHello(body), { msgType: 1, messageSeq: 1, body }, options);
}

/** The ServerHello's cipher suite and extensions. */
async function serverHello(
  handshake: ServerHandshake,
): Promise<{ suite: number; extensions: Map<number, Buffer>; types: number[] }> {
  const flight = (await handshake.start()).plain;
  const reader = new ByteReader(flight[0].body);
  reader.uint16();
  reader.bytes(32);
  reader.vector(1);
  const suite = reader.uint16();
  reader.uint8();
  const extensions = new Map<number, Buffer>();
  if (reader.remaining > 0) {
    const list = new ByteReader(reader.vector(2));
    while (list.remaining > 0) extensions.set(list.uint16(), list.vector(2));
  }
  return { suite, extensions, types: flight.map((message) => message.msgType) };
}

function failsWith(alert: number, reason: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof HandshakeFailure && err.alert === alert && reason.test(err.message);
}

describe('DTLS server handshake negotiation', () => {
  it('PSK with a client that sends no extensions: ServerHello without extensions, no ServerKeyExchange', async () => {
    const hello = await serverHello(handshakeFor(pskOnly, { cipherSuites: [0x00ae, 0xc0a8] }));
    assert.equal(hello.suite, 0xc0a8, 'CCM_8 preferred');
    assert.equal(hello.extensions.size, 0);
    assert.deepEqual(hello.types, [HandshakeType.serverHello, HandshakeType.serverHelloDone]);
  });

  it('numbers our messages from the ClientHello message_seq (the HelloVerifyRequest had the one before)', async () => {
    const flight = (await handshakeFor(pskOnly, { cipherSuites: [0xc0a8] }).start()).plain;
    assert.deepEqual(
      flight.map((message) => message.messageSeq),
      [1, 2],
    );
  });

  it('echoes extended_master_secret, and renegotiation_info for the extension or the SCSV', async () => {
    const withExtensions = await serverHello(
      handshakeFor(pskOnly, {
        cipherSuites: [0xc0a8],
        extensions: [
          [ExtensionType.extendedMasterSecret, Buffer.alloc(0)],
          [ExtensionType.renegotiationInfo, uint8(0)],
        ],
      }),
    );
    assert.deepEqual(withExtensions.extensions.get(ExtensionType.extendedMasterSecret), Buffer.alloc(0));
    assert.deepEqual(withExtensions.extensions.get(ExtensionType.renegotiationInfo), uint8(0));
    const withScsv = await serverHello(handshakeFor(pskOnly, { cipherSuites: [0xc0a8, 0x00ff] }));
    assert.deepEqual(withScsv.extensions.get(ExtensionType.renegotiationInfo), uint8(0));
    assert.equal(withScsv.extensions.has(ExtensionType.extendedMasterSecret), false);
  });

  it('refuses a non-empty renegotiation_info, DTLS 1.0 only, and no suite in common', async () => {
    assert.throws(
      () =>
        handshakeFor(pskOnly, {
          cipherSuites: [0xc0a8],
          extensions: [[ExtensionType.renegotiationInfo, vector(1, Buffer.alloc(12))]],
        }),
      failsWith(AlertDescription.handshakeFailure, /renegotiation_info/),
    );
    const body = encodeClientHello({ cipherSuites: [0xc0a8] });
    body.writeUInt16BE(0xfeff, 0);
    assert.throws(
      () => new ServerHandshake(pskOnly, peer, parseClientHello(body), { msgType: 1, messageSeq: 1, body }),
      failsWith(AlertDescription.protocolVersion, /DTLS 1\.2/),
    );
    assert.throws(
      () => handshakeFor(pskOnly, { cipherSuites: [0xc02b, 0x002f] }),
      failsWith(AlertDescription.handshakeFailure, /no cipher suite in common \(client offered 0xc02b, 0x002f\)/),
    );
  });

  it('ECDHE needs secp256r1 and ecdsa_secp256r1_sha256 from the client, else falls back to PSK', async () => {
    const ecdhe = [0xc0ae, 0xc0a8];
    const p384Only: Array<[number, Buffer]> = [[ExtensionType.supportedGroups, vector(2, uint16(24))]];
    assert.equal(
      (await serverHello(handshakeFor(rawKeysAndPsk, { cipherSuites: ecdhe, extensions: p384Only }))).suite,
      0xc0a8,
    );
    const rsaOnly: Array<[number, Buffer]> = [[ExtensionType.signatureAlgorithms, vector(2, uint16(0x0401))]];
    assert.equal(
      (await serverHello(handshakeFor(rawKeysAndPsk, { cipherSuites: ecdhe, extensions: rsaOnly }))).suite,
      0xc0a8,
    );
  });

  it('raw public keys (RFC 7250): an RPK client gets our raw key even when it lists X.509 first', async () => {
    const both: HandshakeCredentials = {
      ...rawKeysAndPsk,
      certificate: { chain: [Buffer.from('not parsed here')], privateKey: serverKey },
    };
    const hello = await serverHello(
      handshakeFor(both, {
        cipherSuites: [0xc0ae],
        extensions: [
          [ExtensionType.clientCertificateType, vector(1, uint8(2))],
          [ExtensionType.serverCertificateType, vector(1, Buffer.from([0, 2]))],
        ],
      }),
    );
    assert.equal(hello.suite, 0xc0ae);
    assert.deepEqual(hello.extensions.get(ExtensionType.clientCertificateType), uint8(2));
    assert.deepEqual(hello.extensions.get(ExtensionType.serverCertificateType), uint8(2));
    assert.deepEqual(hello.types, [
      HandshakeType.serverHello,
      HandshakeType.certificate,
      HandshakeType.serverKeyExchange,
      HandshakeType.certificateRequest,
      HandshakeType.serverHelloDone,
    ]);
  });

  it('without client_certificate_type the client must use X.509: no ECDHE when only raw keys are trusted', async () => {
    assert.equal((await serverHello(handshakeFor(rawKeysAndPsk, { cipherSuites: [0xc0ae, 0xc0a8] }))).suite, 0xc0a8);
  });

  it('Connection ID: offered when the client sends ext 54, with the client CID kept (empty allowed)', async () => {
    const ours = Buffer.from('0102030405', 'hex');
    const handshake = handshakeFor(
      pskOnly,
      { cipherSuites: [0xc0a8], extensions: [[ExtensionType.connectionId, vector(1, Buffer.alloc(0))]] },
      { connectionId: ours },
    );
    assert.deepEqual(handshake.connectionIds, { own: ours, peer: Buffer.alloc(0) });
    assert.deepEqual((await serverHello(handshake)).extensions.get(ExtensionType.connectionId), vector(1, ours));
    const notAsked = handshakeFor(pskOnly, { cipherSuites: [0xc0a8] }, { connectionId: ours });
    assert.equal(notAsked.connectionIds, undefined);
    assert.equal((await serverHello(notAsked)).extensions.has(ExtensionType.connectionId), false);
  });

  it('the client flight must come in order', async () => {
    const handshake = handshakeFor(pskOnly, { cipherSuites: [0xc0a8] });
    await handshake.start();
    await assert.rejects(
      handshake.receive({ msgType: HandshakeType.finished, messageSeq: 2, body: Buffer.alloc(12) }),
      failsWith(AlertDescription.unexpectedMessage, /unexpected handshake message 20 \(expected 16\)/),
    );
  });
});
