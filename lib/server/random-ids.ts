/**
 * Short random ids, URL-safe (base64url): registration ids (the Location-Path a device updates: unguessable) and
 * observation ids. Random bytes are drawn 6 KiB at a time: one randomBytes() call per registration was 3.5% of a
 * registration storm.
 */
import { randomBytes } from 'node:crypto';

let pool = Buffer.alloc(0);
let offset = 0;

/** `bytes` random bytes as base64url text (4 characters per 3 bytes). */
export function randomId(bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(6 * 1024);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return id;
}

/** A registration id: 48 random bits, 8 characters. */
export function newRegistrationId(): string {
  return randomId(6);
}

/**
 * An observation id: 96 random bits, 16 characters (a flat string of 40 bytes; the UUID it replaces took 56, and
 * every observation keeps one).
 */
export function newObservationId(): string {
  return randomId(12);
}
