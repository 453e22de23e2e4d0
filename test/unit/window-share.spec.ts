import { SHARE_SPAN_MS, WindowShare } from '../../src/ratelimit/window-share';

describe(WindowShare.name, () => {
  it('sizes a share from what the process was asked in about the last span, at least one request', () => {
    const share = new WindowShare(1, 0);
    expect(share.targetRequests).toBe(1);
    expect(share.targetTokens(30)).toBe(30);
    for (let i = 0; i < 10; i++) share.note(i, 100);
    expect(share.targetRequests).toBe(10);
    expect(share.targetTokens()).toBe(1_000);
    expect(share.targetTokens(250)).toBe(2_500); // a larger request than usual: room for as many of it
    // the next span starts from what the last one saw
    share.note(SHARE_SPAN_MS, 100);
    expect(share.targetRequests).toBe(10);
    // after a quiet spell, demand starts over
    share.note(4 * SHARE_SPAN_MS, 100);
    expect(share.targetRequests).toBe(1);
  });

  it('admits from what it holds, says when it runs low, and empties for a give-back', () => {
    const share = new WindowShare(1, 0);
    for (let i = 0; i < 4; i++) share.note(i, 10);
    share.requests = 4;
    share.tokens = 35;
    expect(share.low(true)).toBe(false);
    expect(share.take(10)).toBe(true);
    expect(share.take(10)).toBe(true);
    expect(share.low(false)).toBe(false);
    expect(share.low(true)).toBe(true); // 15 tokens, under half of 40
    expect(share.take(20)).toBe(false); // not enough tokens: nothing taken
    expect(share.requests).toBe(2);
    expect(share.drain()).toEqual({ requests: 2, tokens: 15 });
    expect(share.take(0)).toBe(false);
    expect(share.low(false)).toBe(true);
  });
});
