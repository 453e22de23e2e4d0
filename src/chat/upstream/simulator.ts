import { Readable } from 'node:stream';
import type { UpstreamResponse } from './upstream.client';

/** The label every simulated answer carries, in its text and in `system_fingerprint`. */
export const SIMULATOR_FINGERPRINT = 'nexo-dev-simulator';

function approxTokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text, 'utf8') / 4));
}

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown };
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join(' ');
    }
  }
  return '';
}

/**
 * An OpenAI-compatible answer made up locally, so a newcomer without provider accounts sees
 * the whole flow. Only reachable when NODE_ENV is not production.
 */
export function simulate(path: string, payload: Record<string, unknown>): UpstreamResponse {
  const model = String(payload.model);
  const created = Math.floor(Date.now() / 1000);
  if (path === '/embeddings') {
    const inputs = Array.isArray(payload.input) ? payload.input : [payload.input];
    const data = inputs.map((input, index) => ({
      object: 'embedding',
      index,
      embedding: Array.from({ length: 8 }, (_, i) => Number(Math.sin(JSON.stringify(input).length + i).toFixed(6))),
    }));
    const tokens = inputs.reduce<number>((sum, input) => sum + approxTokens(JSON.stringify(input)), 0);
    return json({ object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  const said = lastUserText(payload.messages);
  const maxTokens = Number(payload.max_completion_tokens ?? payload.max_tokens ?? 256);
  const words = [
    '[NexoRouter development simulator]',
    `No provider API key is configured, so this reply was made up locally instead of by ${model}.`,
    'Set PROVIDER_<ID>_API_KEY (or PUT /admin/providers) to reach the real model.',
    `Your last message had ${said.length} characters.`,
  ]
    .join(' ')
    .split(' ')
    .slice(0, Math.max(1, Math.floor(maxTokens / 2)));
  const content = words.join(' ');
  const promptTokens = approxTokens(JSON.stringify(payload.messages ?? ''));
  const completionTokens = Math.min(maxTokens, approxTokens(content));
  const id = `chatcmpl-sim-${created}${Math.floor(Math.random() * 1e9)}`;
  const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };

  if (!payload.stream) {
    return json({
      id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: SIMULATOR_FINGERPRINT,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  }
  const base = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: SIMULATOR_FINGERPRINT };
  const events = [
    { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
    ...words.map((w, i) => ({ ...base, choices: [{ index: 0, delta: { content: i === 0 ? w : ` ${w}` }, finish_reason: null }] })),
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
    { ...base, choices: [], usage },
  ];
  const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
  return { status: 200, contentType: 'text/event-stream', body: Readable.from([Buffer.from(text)]), simulated: true };
}

function json(body: unknown): UpstreamResponse {
  return { status: 200, contentType: 'application/json', body: Readable.from([Buffer.from(JSON.stringify(body))]), simulated: true };
}
