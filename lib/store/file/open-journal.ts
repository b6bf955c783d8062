// Where a server keeps its state on disk: the journal file of a store directory, its secret, safe file names.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SecretBox } from '../secret-box';
import { Journal } from './journal';
import type { JournalOptions } from './journal';

export interface FileStoreOptions extends Omit<JournalOptions, 'secrets'> {
  /**
   * The secret secrets are sealed with (Node-RED's credential secret, or one configured). Without it, a
   * random key is generated once into `<dir>/store.key` (mode 0600) beside the data.
   */
  secret?: string;
}

/**
 * Where a server keeps its state on disk: `<dir>/<name>.journal`, and the encryption key file when no
 * secret is given. The directory is created with mode 0700.
 */
export function openJournal(dir: string, name: string, options: FileStoreOptions = {}): Journal {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secret = options.secret || keyFileSecret(dir);
  return Journal.open(join(dir, `${safeFileName(name)}.journal`), { ...options, secrets: new SecretBox(secret) });
}

function keyFileSecret(dir: string): string {
  const path = join(dir, 'store.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}

/**
 * A name that is safe as one file name on every platform: letters, digits, '.', '_' and '-' kept,
 * anything else (path separators, ':' of an address, ...) escaped as `%XX`, and never `.` or `..`.
 */
export function safeFileName(name: string): string {
  const escaped = Array.from(Buffer.from(name, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9._-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return escaped === '' || escaped === '.' || escaped === '..' ? `%${escaped || 'empty'}` : escaped;
}
