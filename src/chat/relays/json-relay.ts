import { Injectable } from '@nestjs/common';
import { ApiError, ClientClosedError, GatewayError } from '../../common/errors/api-error';
import { MetricsService } from '../../metrics/metrics.service';
import type { ProxyCall, ProxyBody } from '../proxy-call';
import { UpstreamClient, UpstreamResponse } from '../upstream/upstream.client';
import { completionText, measureUsage } from '../usage-report';

/**
 * A JSON answer (chat without streaming, embeddings): read whole, charged, then sent with the
 * public model id and the charge in `x-nexo-cost-micros`. The charge is recorded before the
 * client gets the answer, and an answer that reached nobody is not charged.
 */
@Injectable()
export class JsonRelay {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly metrics: MetricsService,
  ) {}

  async relay(call: ProxyCall, upstream: UpstreamResponse): Promise<void> {
    const answer = await this.read(call, upstream);
    const usage = measureUsage(call, answer.usage, () => completionText(answer));
    answer.model = call.model.id;
    // a client that hung up while the answer arrived (an SDK's timeout, about to retry) is
    // not charged for an answer it never got: let pending socket events run, then look
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (call.clientGone) throw new ClientClosedError('client_disconnected');
    // the answer's bytes are made while Redis acknowledges its charge, not after
    const json = JSON.stringify(answer);
    const receipt = await call.hold!.settle(call.outcome(200, null, usage));
    if (!receipt.ok) {
      // neither Redis nor PostgreSQL took the charge: the answer is withheld (never served
      // unbilled), and the sweeper releases the hold later
      throw new GatewayError(503, 'The gateway cannot record billing right now; the answer was not delivered. Try again shortly.', {
        'retry-after': '1',
      });
    }
    // gone while the charge was recorded: take it back if no worker has applied it yet
    if (call.clientGone && (await call.hold!.withdraw())) throw new ClientClosedError('client_disconnected');
    this.metrics.chargedMicros.inc({ model: call.model.id }, receipt.chargedMicros);
    // the headers Express's res.json would set, without its content negotiation and freshness
    // checks; headers and body leave in one write
    const res = call.res;
    res.statusCode = 200;
    res.setHeader('x-nexo-cost-micros', String(receipt.chargedMicros));
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(json));
    res.end(json);
  }

  /** The provider's body, decoded once and whole (a character split across chunks stays intact). */
  private async read(call: ProxyCall, upstream: UpstreamResponse): Promise<ProxyBody> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of upstream.body) chunks.push(chunk);
    } catch (err) {
      // the client left while the answer arrived (499, free), or the provider failed mid-body
      // (timeout 504, else 502)
      throw call.abort.aborted ? new ClientClosedError('client_disconnected') : this.upstream.failure(call.provider, err, call.req.id);
    }
    try {
      const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const parsed: unknown = JSON.parse(whole.toString('utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as ProxyBody;
    } catch {
      throw new ApiError(502, 'gateway_error', 'The upstream provider sent a response that is not valid JSON.', 'api_error');
    }
  }
}
