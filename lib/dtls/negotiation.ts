/**
 * Choosing what a handshake uses from the ClientHello and our credentials: the cipher suite and, for
 * ECDHE_ECDSA, which certificate type (X.509 or raw public key) each side presents.
 */

import { AlertDescription, CertificateType, EC_POINT_FORMAT_UNCOMPRESSED, ExtensionType } from './constants';
import { NAMED_GROUP_SECP256R1, SIGNATURE_ECDSA_SHA256 } from './constants';
import { HandshakeFailure } from './failure';
import type { HandshakeCredentials } from './handshake-credentials';
import { parseList, type ClientHello } from './messages';
import type { CipherSuite } from './suites';

export type CertificateKind = 'x509' | 'rpk';

export interface Negotiated {
  suite: CipherSuite;
  serverCertificate?: CertificateKind;
  clientCertificate?: CertificateKind;
}

/** Our most preferred enabled suite the client offers and our credentials can serve; fails when there is none. */
export function negotiate(hello: ClientHello, credentials: HandshakeCredentials): Negotiated {
  const offered = new Set(hello.cipherSuites);
  for (const suite of credentials.suites) {
    if (!offered.has(suite.id)) continue;
    if (suite.keyExchange === 'psk') {
      if (credentials.pskKey !== undefined) return { suite };
      continue;
    }
    const ecdhe = negotiateEcdhe(hello, credentials);
    if (ecdhe !== undefined) return { suite, ...ecdhe };
  }
  const names = hello.cipherSuites.map((id) => '0x' + id.toString(16).padStart(4, '0')).join(', ');
  throw new HandshakeFailure(AlertDescription.handshakeFailure, `no cipher suite in common (client offered ${names})`);
}

/** Whether ECDHE_ECDSA is possible with this client and our credentials, and with which certificate types. */
function negotiateEcdhe(hello: ClientHello, credentials: HandshakeCredentials): Omit<Negotiated, 'suite'> | undefined {
  const extensions = hello.extensions;
  const groups = extensions.get(ExtensionType.supportedGroups);
  if (groups !== undefined && !parseList(groups, 2, 2).includes(NAMED_GROUP_SECP256R1)) return undefined;
  const pointFormats = extensions.get(ExtensionType.ecPointFormats);
  if (pointFormats !== undefined && !parseList(pointFormats, 1, 1).includes(EC_POINT_FORMAT_UNCOMPRESSED)) {
    return undefined;
  }
  const signatures = extensions.get(ExtensionType.signatureAlgorithms);
  if (signatures !== undefined && !parseList(signatures, 2, 2).includes(SIGNATURE_ECDSA_SHA256)) return undefined;
  const clientCertificate = pickCertificateType(extensions.get(ExtensionType.clientCertificateType), {
    x509: credentials.trustedCertificates.length > 0,
    rpk: credentials.clientRawPublicKey !== undefined,
  });
  // A client authenticating with a raw key gets ours as a raw key too when it accepts one, whatever
  // its order (GnuTLS lists X.509 first): LwM2M's RPK mode is raw keys both ways, and an RPK client
  // usually has no CA to check a certificate with.
  const serverCertificate = pickCertificateType(
    extensions.get(ExtensionType.serverCertificateType),
    { x509: credentials.certificate !== undefined, rpk: credentials.rawPublicKey !== undefined },
    clientCertificate === 'rpk' ? 'rpk' : undefined,
  );
  if (serverCertificate === undefined || clientCertificate === undefined) return undefined;
  return { serverCertificate, clientCertificate };
}

export function certificateTypeCode(kind: CertificateKind | undefined): number {
  return kind === 'rpk' ? CertificateType.rawPublicKey : CertificateType.x509;
}

/**
 * The certificate type to use given the client's client_/server_certificate_type extension (its
 * list in preference order; absent means X.509 only) and what we have credentials for.
 */
function pickCertificateType(
  extension: Buffer | undefined,
  available: { x509: boolean; rpk: boolean },
  preferred?: CertificateKind,
): CertificateKind | undefined {
  const offered = extension === undefined ? [CertificateType.x509] : parseList(extension, 1, 1);
  const kinds = offered.flatMap((code): CertificateKind[] =>
    code === CertificateType.x509 && available.x509
      ? ['x509']
      : code === CertificateType.rawPublicKey && available.rpk
        ? ['rpk']
        : [],
  );
  return preferred !== undefined && kinds.includes(preferred) ? preferred : kinds[0];
}
