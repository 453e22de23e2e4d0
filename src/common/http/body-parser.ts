import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { ApiError, ClientClosedError, InvalidRequestError } from '../errors/api-error';
import type { GatewayRequest } from './request-context';
import { newRequestId } from './request-id';

export const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** JSON nested deeper than this is refused before it is parsed (CONTRACT §3). */
export const MAX_JSON_DEPTH = 128;

const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Stateless between calls (no `stream` option), so one serves every request. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/** Gives every request its id, start time and scope before anything else runs. */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const r = req as GatewayRequest;
  r.id = newRequestId();
  r.startedAt = performance.now();
  r.scope = { id: r.id, upstreamSeconds: 0, provider: null };
  res.setHeader('x-request-id', r.id);
  next();
}

// Reads (and inflates: gzip, deflate, br) up to 32 MB, whatever the Content-Type; the limit
// applies to the inflated size. Parsing is ours (readJsonBody).
const readRawBody = express.raw({ limit: MAX_BODY_BYTES, type: () => true, inflate: true });

/**
 * Reads, decompresses and parses a JSON body. The guard calls it only once the caller is
 * authenticated, so an anonymous body is never inflated or parsed (CONTRACT §3). Bodies are
 * UTF-8 JSON whatever the Content-Type (curl users forget it); a body declared in another
 * charset, not valid UTF-8, nested deeper than 128 levels or not JSON is a 400; over 32 MB
 * a 413. Sets `req.body` (undefined when there is none) and `req.bodyBytes`.
 */
export async function readJsonBody(req: GatewayRequest, res: Response, options: { keepRaw?: boolean } = {}): Promise<void> {
  if (NO_BODY_METHODS.has(req.method) || req.bodyBytes !== undefined) return;
  const charset = declaredCharset(req.headers['content-type']);
  if (charset !== null && !UTF8_CHARSETS.has(charset)) {
    throw new InvalidRequestError(`Request bodies must be UTF-8 JSON; this one is declared as charset "${charset.slice(0, 40)}".`);
  }
  const length = plainBodyLength(req);
  if (length !== null) {
    req.body = await readPlainBody(req, length);
  } else {
    await new Promise<void>((resolve, reject) => {
      readRawBody(req, res, (err?: unknown) => (err ? reject(readError(err)) : resolve()));
    });
  }
  const raw: unknown = req.body;
  if (!Buffer.isBuffer(raw)) {
    req.body = undefined; // no body at all
    return;
  }
  req.bodyBytes = raw.length;
  if (options.keepRaw) req.rawBody = raw;
  req.body = parseJsonBody(raw);
}

/**
 * The declared length of a body that needs nothing but reading: not compressed, not chunked, a
 * Content-Length within the limit, not read yet. Null for anything else, which body-parser
 * reads (inflating, enforcing the limit on what it inflates, answering 413 for a declared
 * length over it).
 */
function plainBodyLength(req: GatewayRequest): number | null {
  const { headers } = req;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return null;
  if (headers['transfer-encoding'] !== undefined) return null;
  const declared = headers['content-length'];
  if (declared === undefined || !/^\d{1,9}$/.test(declared)) return null;
  const length = Number(declared);
  if (length > MAX_BODY_BYTES || req.readableEnded || !req.readable) return null;
  return length;
}

/**
 * Reads a plain body (plainBodyLength) as body-parser's raw reader does, without its layers:
 * the client leaving mid-body is a 499, a stream error or a body shorter than declared a 400.
 */
function readPlainBody(req: GatewayRequest, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    };
    const onEnd = () => {
      cleanup();
      if (received !== length) reject(new InvalidRequestError('The request body could not be read: send UTF-8 JSON.'));
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
    };
    const onAborted = () => {
      cleanup();
      reject(new ClientClosedError());
    };
    const onError = () => {
      cleanup();
      reject(new InvalidRequestError('The request body could not be read: send UTF-8 JSON.'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAborted);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('aborted', onAborted);
    req.once('error', onError);
  });
}

/** UTF-8 JSON bytes to a value; an empty body is `{}` (as Express's JSON parser has it). */
export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  if (jsonDepthExceeds(raw, MAX_JSON_DEPTH)) {
    throw new InvalidRequestError(`The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels.`);
  }
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    throw new InvalidRequestError('The request body is not valid UTF-8: send UTF-8 JSON.');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequestError('We could not parse the JSON body of your request. Send a valid JSON object.');
  }
}

/**
 * Whether JSON text nests arrays and objects deeper than `max`: one pass over the bytes, no
 * recursion, string contents (and their escapes) skipped. Malformed JSON is left to the parser.
 * Bytes are scanned directly: in UTF-8, `"`, `\`, `[`, `]`, `{` and `}` never occur inside a
 * multi-byte character.
 */
export function jsonDepthExceeds(buf: Buffer, max: number): boolean {
  let depth = 0;
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    const c = buf[i];
    if (c === 0x22 /* " */) {
      // to the closing quote: one preceded by an even number of backslashes
      let j = i + 1;
      for (;;) {
        j = buf.indexOf(0x22, j);
        if (j < 0) return false;
        let backslashes = 0;
        for (let k = j - 1; k > i && buf[k] === 0x5c; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** The charset parameter of a Content-Type header, lower-cased; null when none is declared. */
export function declaredCharset(contentType: string | undefined): string | null {
  if (!contentType) return null;
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  if (!match) return null;
  return (match[1] ?? match[2] ?? '').trim().toLowerCase();
}

function readError(err: unknown): ApiError {
  const e = err as { type?: string };
  switch (e.type) {
    case 'entity.too.large':
      return new ApiError(413, 'request_too_large', `Request body is larger than the ${MAX_BODY_BYTES / 1024 / 1024} MB limit.`);
    case 'request.aborted':
      return new ClientClosedError(); // the client went away mid-body: nobody to answer
    case 'encoding.unsupported':
      return new InvalidRequestError('Unsupported Content-Encoding: send the body uncompressed or as gzip, deflate or br.');
    default:
      return new InvalidRequestError('The request body could not be read: send UTF-8 JSON.');
  }
}
