import { goDuration } from '../../src/ratelimit/duration';
import { rateLimitHeaders } from '../../src/ratelimit/rate-limiter.service';

describe('goDuration', () => {
  it("writes milliseconds as Go's time.Duration does (OpenAI's x-ratelimit-reset-* format)", () => {
    expect(goDuration(0)).toBe('0s');
    expect(goDuration(-5)).toBe('0s');
    expect(goDuration(1)).toBe('1ms');
    expect(goDuration(59)).toBe('59ms');
    expect(goDuration(999)).toBe('999ms');
    expect(goDuration(1_000)).toBe('1s');
    expect(goDuration(1_500)).toBe('1.5s');
    expect(goDuration(8_640)).toBe('8.64s');
    expect(goDuration(17_005)).toBe('17.005s');
    expect(goDuration(60_000)).toBe('1m0s');
    expect(goDuration(90_500)).toBe('1m30.5s');
    expect(goDuration(360_000)).toBe('6m0s');
    expect(goDuration(3_723_250)).toBe('1h2m3.25s');
    expect(goDuration(3_600_000)).toBe('1h0m0s');
  });
});

describe('rateLimitHeaders', () => {
  it('gives limit, remaining (never negative) and reset for each limit the key has', () => {
    expect(rateLimitHeaders({ rpmLimit: 10, tpmLimit: 1_000 }, 3, 1_200, 6_500)).toEqual({
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '7',
      'x-ratelimit-reset-requests': '6.5s',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': '6.5s',
    });
    expect(rateLimitHeaders({ rpmLimit: null, tpmLimit: 500 }, 1, 20, 59)).toEqual({
      'x-ratelimit-limit-tokens': '500',
      'x-ratelimit-remaining-tokens': '480',
      'x-ratelimit-reset-tokens': '59ms',
    });
    expect(rateLimitHeaders({ rpmLimit: null, tpmLimit: null }, 1, 1, 1)).toEqual({});
  });
});
