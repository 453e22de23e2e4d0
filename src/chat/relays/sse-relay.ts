import { Injectable } from '@nestjs/common';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Response } from 'express';
import { ClientClosedError, GatewayError } from '../../common/errors/api-error';
import { MetricsService } from '../../metrics/metrics.service';
import type { ProxyBody, ProxyCall } from '../proxy-call';
import { UpstreamClient, UpstreamResponse } from '../upstream/upstream.client';
import { completionText, measureUsage } from '../usage-report';

const CUT_SHORT = {
  message: 'The upstream provider ended the stream early; the answer is incomplete.',
  type: 'api_error',
  param: null,
  code: 'gateway_error',
};

/**
 * Server-sent events, relayed event by event with the public model id, usage read from the
 * stream. Headers go out with the first event, so a stream that fails before any output is
 * still a plain 502/504 that costs nothing. The charge is recorded before the last line: a
 * `: cost_micros=N` comment, then `data: [DONE]` — or, when the provider cut the stream, an
 * error event that SDKs raise.
 */
@Injectable()
export class SseRelay {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly metrics: MetricsService,
  ) {}

  async relay(call: ProxyCall, upstream: UpstreamResponse): Promise<void> {
    const { res } = call;
    const wantsUsage = (call.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const writer = new EventWriter(res);
    let usage: unknown = null;
    let produced = '';
    let done = false;
    let upstreamFailed = false;

    // the events of one upstream chunk are relayed in one write, their lines gathered here
    const pending: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => pending.push(event) });
    const relayPending = async (): Promise<void> => {
      let out = '';
      for (let i = 0; i < pending.length; i++) out += forward(pending[i]);
      pending.length = 0;
      if (out) await writer.write(out);
    };
    /** The line to send for one provider event ('' for none), reading its usage and text on the way. */
    const forward = (event: EventSourceMessage): string => {
      if (event.data === '[DONE]') {
        done = true;
        return '';
      }
      let data: ProxyBody;
      try {
        data = JSON.parse(event.data) as ProxyBody;
      } catch {
        return ''; // not JSON: nothing a client could use
      }
      if (data.usage) usage = data.usage;
      produced += completionText(data);
      const usageOnly = Array.isArray(data.choices) && data.choices.length === 0 && data.usage;
      if (usageOnly && !wantsUsage) return '';
      if (!wantsUsage && 'usage' in data) delete data.usage;
      if ('model' in data) data.model = call.model.id;
      return `data: ${JSON.stringify(data)}\n\n`;
    };

    try {
      const decoder = new TextDecoder('utf-8');
      for await (const chunk of upstream.body) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        await relayPending();
        if (res.destroyed) break;
      }
      parser.feed(`${decoder.decode()}\n\n`); // a last event without its blank line
      await relayPending();
    } catch (err) {
      upstreamFailed = !call.abort.aborted;
      if (!writer.started && upstreamFailed) throw this.upstream.failure(call.provider, err, call.req.id);
    }
    const clientGone = res.destroyed && !res.writableFinished;
    if (clientGone) upstream.body.destroy?.();
    if (!writer.started) {
      // nothing reached the client: a failed or abandoned request, free of charge
      if (clientGone) throw new ClientClosedError(done ? 'client_disconnected' : 'client_closed_request');
      if (!done) throw new GatewayError(502, 'The upstream provider ended the stream before sending anything.');
    }
    // a stream cut short, by the client or by the provider, is charged for what was produced
    const cut = clientGone ? 'client_disconnected' : upstreamFailed || !done ? 'upstream_interrupted' : null;
    const receipt = await call.hold!.settle(
      call.outcome(
        200,
        cut,
        measureUsage(call, usage, () => produced),
      ),
    );
    this.metrics.chargedMicros.inc({ model: call.model.id }, receipt.chargedMicros);
    writer.start();
    if (res.destroyed || res.writableEnded) return;
    const last = cut === 'upstream_interrupted' ? `data: ${JSON.stringify({ error: CUT_SHORT })}\n\n` : 'data: [DONE]\n\n';
    res.end(`: cost_micros=${receipt.chargedMicros}\n\n${last}`);
  }
}

/** Writes events to the client with backpressure; the stream's headers go out with the first write. */
class EventWriter {
  started = false;

  constructor(private readonly res: Response) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.status(200);
    this.res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    this.res.setHeader('cache-control', 'no-cache');
    this.res.setHeader('x-accel-buffering', 'no');
    // no flushHeaders(): the headers leave with the first write, in the same system call
  }

  async write(data: string): Promise<void> {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.start();
    if (!this.res.write(data)) await drainOrClose(this.res);
  }
}

/** Resolves on 'drain' or 'close', whichever comes first, leaving no listener behind. */
function drainOrClose(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const settled = () => {
      res.off('drain', settled);
      res.off('close', settled);
      resolve();
    };
    res.on('drain', settled);
    res.on('close', settled);
  });
}
