// Sealing what a store must not keep in clear (file and Redis stores alike): AES-256-GCM under a stretched secret.
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';

/**
 * Encrypts what a store must not keep in clear (PSK keys, private keys, DTLS master secrets and record
 * keys) with AES-256-GCM. The key comes from a secret string (Node-RED's credential secret, or one the
 * user configured), stretched with scrypt once when the store opens: a passphrase-like secret is not
 * used as a key directly.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(secret: string | Buffer) {
    if (secret.length === 0) throw new Error('the store encryption secret is empty');
    // A fixed salt: the same secret must give the same key in every process that shares the store.
    this.key = scryptSync(secret, 'node-red-contrib-lwm2m-server store v1', 32, { N: 1 << 14, r: 8, p: 1 });
  }

  /** `iv | tag | ciphertext`, base64: what the store writes instead of the clear text. */
  seal(clear: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(clear, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The clear text; throws when the data was sealed with another key or altered. */
  open(sealed: string): string {
    const data = Buffer.from(sealed, 'base64');
    if (data.length < 28) throw new Error('sealed data too short');
    const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(12, 28));
    return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString('utf8');
  }
}

/**
 * JSON with Buffers as `{"$b":"<base64>"}` (JSON.stringify would write them as arrays of numbers, four
 * times the size) and back.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, item: unknown) {
    const original = this[key];
    if (Buffer.isBuffer(original)) return { $b: original.toString('base64') };
    return item;
  });
}

export function fromJson<T = unknown>(text: string): T {
  return JSON.parse(text, (_key, item: unknown) => {
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const encoded = (item as { $b?: unknown }).$b;
      if (typeof encoded === 'string' && Object.keys(item).length === 1) return Buffer.from(encoded, 'base64');
    }
    return item;
  }) as T;
}
