import { InvalidRequestError } from './errors/api-error';

/** An opaque keyset cursor for the page after the row with this (bigint) id. */
export function encodeCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

/** The row id a cursor of `encodeCursor` carries; 400 invalid_request_error for anything else. */
export function decodeCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^id:(\d{1,18})$/.exec(decoded); // 18 digits always fit a bigint
  if (!match) throw new InvalidRequestError('cursor is not valid: pass the next_cursor of a previous page.', 'cursor');
  return match[1];
}
