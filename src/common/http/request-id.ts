import { randomUUID } from 'node:crypto';

/**
 * A unique, roughly time-ordered request id: `req_` + 12 hex chars of time + 16 random hex
 * chars. randomUUID draws from a cached entropy pool, far cheaper per call than randomBytes.
 */
export function newRequestId(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  const random = randomUUID().replace(/-/g, '');
  return `req_${time}${random.slice(0, 12)}${random.slice(13, 17)}`;
}
