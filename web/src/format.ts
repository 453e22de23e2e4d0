// Money and dates as people read them. Amounts are integers of micro-USD; they are formatted with
// BigInt arithmetic so no float ever rounds a balance.

const MICROS = 1_000_000n;

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Exact: `$1,234.567890` (six decimals). */
export function usd(micros: number | bigint): string {
  const m = BigInt(micros);
  const sign = m < 0n ? '-' : '';
  const abs = m < 0n ? -m : m;
  return `${sign}$${group((abs / MICROS).toString())}.${(abs % MICROS).toString().padStart(6, '0')}`;
}

/** Rounded to cents (half away from zero) for summaries: `$1,234.57`; pair it with usd() in a title. */
export function usdCents(micros: number | bigint): string {
  const m = BigInt(micros);
  const sign = m < 0n ? '-' : '';
  const abs = m < 0n ? -m : m;
  const cents = (abs + 5_000n) / 10_000n;
  return `${sign}$${group((cents / 100n).toString())}.${(cents % 100n).toString().padStart(2, '0')}`;
}

/** Price per million tokens, exact but without trailing zeros beyond the cents: `$0.15`, `$0.075`. */
export function pricePerMillion(micros: number): string {
  const exact = usd(micros);
  return exact.replace(/(\.\d\d\d*?)0+$/, '$1');
}

/**
 * Dollars typed by a person (`12`, `12.5`, `0.000001`) as micro-USD, or an error message.
 * Parsed as a string: `0.1 + 0.2` never happens here.
 */
export function parseDollars(text: string): { micros: bigint } | { error: string } {
  const t = text.trim().replace(/^\$/, '').replace(/,/g, '');
  if (!/^\d+(\.\d*)?$|^\.\d+$/.test(t)) return { error: 'Enter an amount in dollars, such as 25 or 12.50.' };
  const [whole, frac = ''] = t.split('.');
  if (frac.length > 6) return { error: 'Amounts have at most six decimals (one micro-dollar).' };
  const micros = BigInt(whole || '0') * MICROS + BigInt(frac.padEnd(6, '0') || '0');
  return { micros };
}

export function integer(n: number): string {
  return group(String(n));
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const localDayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function localDateTime(iso: string): string {
  return localFormat.format(new Date(iso));
}

export function localDate(iso: string): string {
  return localDayFormat.format(new Date(iso));
}

/** `2026-12-03 07:35:19 UTC`, shown on hover. */
export function utcDateTime(iso: string): string {
  return `${new Date(iso)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')} UTC`;
}

/** `YYYY-MM-DD` of a Date in UTC. */
export function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** `YYYY-MM-DD` of a Date in the user's time zone (what a date input shows). */
export function localDay(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The instant a local `YYYY-MM-DD` starts, as ISO 8601. */
export function startOfLocalDay(day: string): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d).toISOString();
}

export function addDays(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number);
  return localDay(new Date(y, m - 1, d + days));
}
