import { promptTokenBound } from '../../src/billing/hold-estimate';
import { sleep } from './fake-provider';
import type { TestGateway } from './gateway';

/**
 * CONTRACT §2, written out independently of the implementation: the cost in micro-USD of a
 * request at the given prices (micro-USD per 1M tokens), rounded up.
 */
export function costAt(inPerMillion: number, outPerMillion: number): (prompt: number, completionTokens: number) => number {
  return (prompt, completionTokens) =>
    Number((BigInt(prompt) * BigInt(inPerMillion) + BigInt(completionTokens) * BigInt(outPerMillion) + 999_999n) / 1_000_000n);
}

/** Balance and holds of a workspace, spending and holds of one of its keys. */
export async function money(gw: TestGateway, workspaceId: string, keyId: string) {
  const [ws] = await gw.db.query('SELECT balance_micros, held_micros FROM workspaces WHERE id = $1', [workspaceId]);
  const [k] = await gw.db.query('SELECT spent_micros, held_micros FROM api_keys WHERE id = $1', [keyId]);
  return {
    balance: Number(ws.balance_micros),
    wsHeld: Number(ws.held_micros),
    spent: Number(k.spent_micros),
    keyHeld: Number(k.held_micros),
  };
}

/** What each ledger entry of a request charged (positive micro-USD). */
export async function chargesOf(gw: TestGateway, requestId: string): Promise<number[]> {
  const rows = await gw.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${requestId}`]);
  return rows.map((r: any) => -Number(r.amount_micros));
}

/** The usage logs of a request, as they are now. */
export async function usageLogsOf(gw: TestGateway, requestId: string): Promise<Array<Record<string, any>>> {
  return gw.db.query('SELECT * FROM usage_logs WHERE request_id = $1', [requestId]);
}

/** The one usage log of a request, waited for. */
export async function usageLog(gw: TestGateway, requestId: string, timeoutMs = 10_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await gw.db.query('SELECT * FROM usage_logs WHERE request_id = $1', [requestId]);
    if (rows.length === 1) return rows[0];
    if (Date.now() > deadline) throw new Error(`no usage log for ${requestId} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** The prompt bound the gateway computes for this exact request body (as JSON.stringify sends it). */
export function promptBoundOf(body: Record<string, unknown>): number {
  return promptTokenBound(body, Buffer.byteLength(JSON.stringify(body)));
}
