/**
 * Durations as written in mirrors.yaml (`100ms`, `5s`, `2m`, `1h`, `1m30s`) to milliseconds. Pure.
 */

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
// Units must come largest first and at most once, so `5s5s` or `30s1m` are typos rather than sums.
const ORDER = ['h', 'm', 's', 'ms'];

export const MAX_DURATION_MS = 24 * 3_600_000;

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };

export function parseDuration(text: string): DurationResult {
  const bad = (message: string): DurationResult => ({ ok: false, message });
  const parts = [...text.matchAll(/([0-9]+)(ms|h|m|s)/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) {
    return bad(`\`${text}\` is not a duration`);
  }
  let ms = 0;
  let last = -1;
  for (const [, digits, unit] of parts) {
    const rank = ORDER.indexOf(unit);
    if (rank <= last) return bad(`\`${text}\` is not a duration: give each unit once, largest first (e.g. 1m30s)`);
    last = rank;
    ms += Number(digits) * UNIT_MS[unit];
  }
  if (ms <= 0) return bad('the duration must be more than 0');
  if (ms > MAX_DURATION_MS) return bad('the duration must be at most 24h');
  return { ok: true, ms };
}

export const DURATION_HINT = 'write a duration such as 100ms, 5s, 2m or 1m30s';
