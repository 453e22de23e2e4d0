/**
 * Milliseconds as a Go duration, the format of OpenAI's `x-ratelimit-reset-*` headers (clients
 * parse them with Go's `time.ParseDuration` or its ports): `0s`, `59ms`, `1s`, `1.5s`, `6m0s`,
 * `1h2m3.25s`.
 */
export function goDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const seconds = `${Math.floor(millis / 1000)}${
    millis % 1000
      ? `.${String(millis % 1000)
          .padStart(3, '0')
          .replace(/0+$/, '')}`
      : ''
  }s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}
