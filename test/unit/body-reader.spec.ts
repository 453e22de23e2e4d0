import type { Response } from 'express';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import zlib from 'node:zlib';
import { ApiError } from '../../src/common/errors/api-error';
import { readJsonBody } from '../../src/common/http/body-parser';
import type { GatewayRequest } from '../../src/common/http/request-context';

/** What readJsonBody made of each request the server got: the body and its size, or the error. */
type Read = { body: unknown; bytes: number | undefined } | { status: number; code: string };

describe('readJsonBody', () => {
  let server: Server;
  let port: number;
  const reads: Read[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const r = req as GatewayRequest;
      readJsonBody(r, res as unknown as Response).then(
        () => {
          reads.push({ body: r.body, bytes: r.bodyBytes });
          res.end('ok');
        },
        (err: ApiError) => {
          reads.push({ status: err.status, code: err.code });
          res.destroy();
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    reads.length = 0;
  });

  /** Sends a raw HTTP/1.1 request in pieces, a few ms apart; resolves once the server has read it (or failed to). */
  async function send(headers: string, pieces: Buffer[], close = false): Promise<Read> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(`POST /x HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
    for (const piece of pieces) {
      socket.write(piece);
      await new Promise((r) => setTimeout(r, 5));
    }
    if (close) socket.destroy();
    for (let i = 0; i < 200 && reads.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
    return reads[0];
  }

  it('reads a plain body that arrives in pieces', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'm', text: 'é'.repeat(50) }));
    const read = await send(`Content-Length: ${body.length}\r\n`, [body.subarray(0, 7), body.subarray(7, 20), body.subarray(20)]);
    expect(read).toEqual({ body: { model: 'm', text: 'é'.repeat(50) }, bytes: body.length });
  });

  it('an empty body is {}', async () => {
    expect(await send('Content-Length: 0\r\n', [])).toEqual({ body: {}, bytes: 0 });
  });

  it('a client that leaves mid-body is a 499', async () => {
    expect(await send('Content-Length: 100\r\n', [Buffer.from('{"model":')], true)).toEqual({ status: 499, code: 'client_closed_request' });
  });

  it('compressed and chunked bodies are read as before', async () => {
    const gzipped = zlib.gzipSync(Buffer.from('{"a":[1,2]}'));
    expect(await send(`Content-Encoding: gzip\r\nContent-Length: ${gzipped.length}\r\n`, [gzipped])).toEqual({
      body: { a: [1, 2] },
      bytes: 11,
    });
    reads.length = 0;
    expect(await send('Transfer-Encoding: chunked\r\n', [Buffer.from('5\r\n{"b":\r\n2\r\n1}\r\n0\r\n\r\n')])).toEqual({
      body: { b: 1 },
      bytes: 7,
    });
  });

  it('a declared length over the limit is a 413 without reading', async () => {
    expect(await send(`Content-Length: ${64 * 1024 * 1024}\r\n`, [Buffer.from('{}')], true)).toMatchObject({ status: 413 });
  });
});
