/** Protocol numbers from RFC 5246 / RFC 6347 and the IANA TLS registries. */

/** DTLS 1.2 on the wire ({254, 253}). */
export const DTLS_1_2 = 0xfefd;
/** DTLS 1.0 ({254, 255}): allowed in the record version of a first ClientHello. */
export const DTLS_1_0 = 0xfeff;

export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
  /** RFC 9146: a record carrying a Connection ID; the real type is inside the encrypted plaintext. */
  tls12Cid: 25,
} as const;

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
} as const;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  handshakeFailure: 40,
  badCertificate: 42,
  unsupportedCertificate: 43,
  certificateExpired: 45,
  certificateUnknown: 46,
  illegalParameter: 47,
  unknownCa: 48,
  accessDenied: 49,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  insufficientSecurity: 71,
  internalError: 80,
  noRenegotiation: 100,
  unsupportedExtension: 110,
  unknownPskIdentity: 115,
} as const;

export const ExtensionType = {
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  clientCertificateType: 19,
  serverCertificateType: 20,
  encryptThenMac: 22,
  extendedMasterSecret: 23,
  /** RFC 9146 (not the draft's 254). */
  connectionId: 54,
  renegotiationInfo: 0xff01,
} as const;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): a client's way to say "secure renegotiation" without the extension. */
export const EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;

export const CertificateType = { x509: 0, rawPublicKey: 2 } as const;

/** secp256r1 in supported_groups (RFC 8422). */
export const NAMED_GROUP_SECP256R1 = 23;
/** ec_point_formats: uncompressed, the only format we use. */
export const EC_POINT_FORMAT_UNCOMPRESSED = 0;
/** ECParameters.curve_type named_curve (RFC 8422 §5.4). */
export const EC_CURVE_TYPE_NAMED = 3;
/** SignatureAndHashAlgorithm ecdsa_secp256r1_sha256: hash sha256 (4), signature ecdsa (3). */
export const SIGNATURE_ECDSA_SHA256 = 0x0403;
/** ClientCertificateType ecdsa_sign (RFC 8422 §5.5). */
export const CLIENT_CERTIFICATE_TYPE_ECDSA_SIGN = 64;
