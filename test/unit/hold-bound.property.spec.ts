import { promptTokenBound } from '../../src/billing/hold-estimate';
import { countPromptTokens } from '../../src/chat/token-count';

/** Small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// code point ranges a prompt may mix: ASCII, Latin-1, Cyrillic, CJK, emoji, combining marks
const RANGES: Array<[number, number]> = [
  [0x20, 0x7e],
  [0xa0, 0xff],
  [0x400, 0x4ff],
  [0x4e00, 0x9fff],
  [0x1f300, 0x1f6ff],
  [0x300, 0x36f],
  [0x09, 0x0a],
];

function randomText(next: () => number, maxLength: number): string {
  const length = Math.floor(next() * maxLength);
  let text = '';
  for (let i = 0; i < length; i++) {
    const [lo, hi] = RANGES[Math.floor(next() * RANGES.length)];
    text += String.fromCodePoint(lo + Math.floor(next() * (hi - lo + 1)));
  }
  return text;
}

describe('prompt token bound (randomised)', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('is at least the tokenizer count for random prompts (seed %i)', (seed) => {
    const next = rng(seed);
    for (let round = 0; round < 40; round++) {
      const messages = Array.from({ length: 1 + Math.floor(next() * 6) }, () => ({
        role: next() < 0.5 ? 'user' : 'assistant',
        content:
          next() < 0.8
            ? randomText(next, 400)
            : [
                { type: 'text', text: randomText(next, 200) },
                { type: 'text', text: randomText(next, 200) },
              ],
      }));
      const body = { messages };
      const bound = promptTokenBound(body);
      const counted = countPromptTokens(body);
      if (bound < counted) throw new Error(`seed ${seed}, round ${round}: bound ${bound} < tokenizer ${counted}`);
      expect(bound).toBeGreaterThanOrEqual(counted);
    }
  });

  it('bounds embedding inputs too', () => {
    const next = rng(99);
    for (let round = 0; round < 50; round++) {
      const input = Array.from({ length: 1 + Math.floor(next() * 5) }, () => randomText(next, 300) || 'x');
      expect(promptTokenBound({ input })).toBeGreaterThanOrEqual(countPromptTokens({ input }));
    }
  });
});
