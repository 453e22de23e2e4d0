import type { Request, Response } from 'express';
import { EventEmitter } from 'node:events';
import { currentRequestId, requestScopeMiddleware, scopedRequests } from '../../src/common/http/request-scope';

/** An Express request with its scope (as the request id middleware leaves it) and its response. */
function request(id: string): { req: Request; res: Response & EventEmitter } {
  const req = { scope: { id, upstreamSeconds: 0, provider: null } } as unknown as Request;
  return { req, res: new EventEmitter() as Response & EventEmitter };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
/** An async `next`, as Express calls it (its promise is not awaited). */
const nextAsync = (work: () => Promise<void>) => () => void work();

describe('the request scope of Express routes', () => {
  it('follows each request through its awaits until its response closes, then the storage is disabled', async () => {
    const a = request('req_a');
    const b = request('req_b');
    const seen: Array<string | undefined> = [];
    let resumeA!: () => void;
    const leftBehind: { late?: Promise<string | undefined> } = {};
    const aDone = new Promise<void>((resolve) => {
      requestScopeMiddleware(
        a.req,
        a.res,
        nextAsync(async () => {
          await new Promise<void>((r) => (resumeA = r));
          seen.push(currentRequestId());
          // work the request left behind, running after its response closed
          leftBehind.late = new Promise((r) => setTimeout(() => r(currentRequestId()), 20));
          resolve();
        }),
      );
    });
    const bDone = new Promise<void>((resolve) => {
      requestScopeMiddleware(
        b.req,
        b.res,
        nextAsync(async () => {
          await tick();
          seen.push(currentRequestId());
          resolve();
        }),
      );
    });
    expect(scopedRequests()).toBe(2);
    await bDone;
    // b's response closing leaves a in its scope
    b.res.emit('close');
    expect(scopedRequests()).toBe(1);
    resumeA();
    await aDone;
    expect(seen).toEqual(['req_b', 'req_a']);
    a.res.emit('close');
    expect(scopedRequests()).toBe(0);
    // with no Express request in flight the storage is off: what a request left behind finds no scope
    expect(await leftBehind.late).toBeUndefined();
  });

  it('is enabled again by the next Express request', async () => {
    const c = request('req_d');
    const id = await new Promise<string | undefined>((resolve) =>
      requestScopeMiddleware(
        c.req,
        c.res,
        nextAsync(async () => {
          await tick();
          resolve(currentRequestId());
        }),
      ),
    );
    expect(id).toBe('req_d');
    c.res.emit('close');
    expect(scopedRequests()).toBe(0);
    expect(currentRequestId()).toBeUndefined();
  });

  it('passes a request without a scope straight on', () => {
    const next = jest.fn();
    const res = new EventEmitter() as Response & EventEmitter;
    requestScopeMiddleware({} as Request, res, next);
    expect(next).toHaveBeenCalledTimes(1);
    expect(scopedRequests()).toBe(0);
    expect(res.listenerCount('close')).toBe(0);
  });
});
