import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * NexoRouter API keys: `nxr_` + 43 base62 characters (256 random bits) + 6 base62 characters
 * of CRC-32 over the random part. The fixed prefix lets secret scanners recognise leaked
 * keys; the checksum lets the gateway refuse a mistyped key without a database lookup.
 */
export const KEY_PREFIX = 'nxr_';
const BODY_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function toBase62(value: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(value % 62n)] + out;
    value /= 62n;
  }
  return out;
}

export interface GeneratedKey {
  key: string;
  hash: string;
  prefix: string;
  lastFour: string;
}

export function generateApiKey(): GeneratedKey {
  const body = toBase62(BigInt(`0x${randomBytes(32).toString('hex')}`), BODY_LENGTH);
  const key = `${KEY_PREFIX}${body}${toBase62(BigInt(crc32(body)), CHECKSUM_LENGTH)}`;
  return { key, hash: hashApiKey(key), prefix: displayPrefix(key), lastFour: key.slice(-4) };
}

/** Prefix, alphabet and length only (a bounded regular expression): cheap enough for every request. */
export function hasApiKeyShape(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** The checksum of a key of the right shape (a CRC and a base-62 conversion). */
export function apiKeyChecksumMatches(key: string): boolean {
  const body = key.slice(KEY_PREFIX.length, KEY_PREFIX.length + BODY_LENGTH);
  const checksum = key.slice(KEY_PREFIX.length + BODY_LENGTH);
  return toBase62(BigInt(crc32(body)), CHECKSUM_LENGTH) === checksum;
}

export function hashApiKey(key: string): string {
  // one-shot (Node ≥ 20.12): no Hash object per request on the hot path
  return hash('sha256', key, 'hex');
}

export function displayPrefix(key: string): string {
  return key.slice(0, KEY_PREFIX.length + 8);
}
