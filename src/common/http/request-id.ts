import { randomUUID } from 'node:crypto';

/**
 * A unique, roughly time-ordered request id: `req_` + 12 hex chars of time + 16 random hex
 * chars. randomUUID draws from a cached entropy pool, far cheaper per call than randomBytes.
 * The random part is cut straight out of the UUID's text (`xxxxxxxx-xxxx-4xxx-yxxx-…`): its
 * first twelve hex digits, then three after the version digit and one more.
 */
export function newRequestId(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  const uuid = randomUUID();
  return `req_${time}${uuid.slice(0, 8)}${uuid.slice(9, 13)}${uuid.slice(15, 18)}${uuid[19]}`;
}
