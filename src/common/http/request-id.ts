import { randomBytes } from 'node:crypto';

/** A unique, sortable-enough request id: `req_` + 24 hex chars (time + randomness). */
export function newRequestId(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  return `req_${time}${randomBytes(8).toString('hex')}`;
}
