import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake provider saw of one request. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, any>;
}

/** How the fake provider answers: a JSON body, an error, or server-sent events. */
export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  /** SSE events (objects are JSON-encoded); `[DONE]` is appended unless `noDone`. */
  events?: Array<unknown>;
  noDone?: boolean;
  /** Destroy the socket after sending the events (a provider cutting the stream). */
  cut?: boolean;
  /** Milliseconds to wait before answering. */
  delayMs?: number;
  /** Milliseconds between SSE events. */
  eventGapMs?: number;
  /** Raw text body (e.g. broken JSON). */
  raw?: string;
  /** A raw body written in these pieces, `pieceGapMs` (default 20) apart (e.g. split inside a UTF-8 character). */
  pieces?: Buffer[];
  pieceGapMs?: number;
  /** Called once the whole answer has been handed to the socket. */
  onSent?: () => void;
}

export type FakeHandler = (req: ReceivedRequest) => FakeReply | Promise<FakeReply>;

export const DEFAULT_USAGE = { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 };

/** A chat completion as OpenAI returns it, with the given usage. */
export function completion(model: string, content = 'Hello from the fake provider', usage: unknown = DEFAULT_USAGE) {
  return {
    id: 'chatcmpl-fake-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model,
    system_fingerprint: 'fp_fake',
    choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
    ...(usage === undefined ? {} : { usage }),
  };
}

/** Stream chunks for `words`, then (optionally) the usage-only chunk. */
export function streamEvents(model: string, words: string[], usage: unknown = DEFAULT_USAGE): unknown[] {
  const base = { id: 'chatcmpl-fake-s', object: 'chat.completion.chunk', created: 1_700_000_000, model };
  return [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
    ...words.map((w) => ({ ...base, choices: [{ index: 0, delta: { content: w }, finish_reason: null }] })),
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    ...(usage ? [{ ...base, choices: [], usage }] : []),
  ];
}

/**
 * A local HTTP server that speaks the OpenAI chat/embeddings protocol, records what it
 * received, and answers as the test tells it to (by default a completion with DEFAULT_USAGE).
 */
export class FakeProvider {
  readonly received: ReceivedRequest[] = [];
  private server: Server;
  private handler: FakeHandler = (req) =>
    req.path.endsWith('/embeddings')
      ? {
          json: {
            object: 'list',
            data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
            model: req.body.model,
            usage: { prompt_tokens: 5, total_tokens: 5 },
          },
        }
      : req.body.stream
        ? { events: streamEvents(req.body.model, ['Hello', ' world']) }
        : { json: completion(req.body.model) };
  url = '';

  static async start(): Promise<FakeProvider> {
    const fake = new FakeProvider();
    await fake.listen();
    return fake;
  }

  /** Replace the answer for the following requests. */
  respond(handler: FakeHandler): void {
    this.handler = handler;
  }

  private listen(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        const { port } = this.server.address() as AddressInfo;
        this.url = `http://127.0.0.1:${port}/v1`;
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: Record<string, any>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      body = {};
    }
    const received: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
    this.received.push(received);
    const reply = await this.handler(received);
    if (reply.delayMs) await sleep(reply.delayMs);
    if (res.destroyed) return;
    if (reply.events) {
      res.writeHead(reply.status ?? 200, { 'content-type': 'text/event-stream', ...reply.headers });
      for (const event of reply.events) {
        if (res.destroyed) return;
        res.write(`data: ${typeof event === 'string' ? event : JSON.stringify(event)}\n\n`);
        if (reply.eventGapMs) await sleep(reply.eventGapMs);
      }
      if (reply.cut) {
        res.socket?.destroy();
        return;
      }
      if (!reply.noDone) res.write('data: [DONE]\n\n');
      res.end();
      return;
    }
    if (reply.pieces) {
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      for (const piece of reply.pieces) {
        if (res.destroyed) return;
        res.write(piece);
        await sleep(reply.pieceGapMs ?? 20);
      }
      res.end();
      return;
    }
    const text = reply.raw ?? JSON.stringify(reply.json ?? {});
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    res.end(text, reply.onSent);
  }

  /** Requests that reached the provider since the test began. */
  last(): ReceivedRequest {
    const r = this.received[this.received.length - 1];
    if (!r) throw new Error('the fake provider received nothing');
    return r;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
