/**
 * "Did you mean" suggestions for misspelt keys, values and peer names. Pure. Bounded whatever the input:
 * a word or candidate list from a hostile file must not make validation slow.
 */

/** Longer words get no suggestion: no key, value or name mirrors knows is this long. */
const MAX_WORD = 64;
/** Candidates compared at most: a file with more peers than this gets suggestions among the first ones. */
const MAX_CANDIDATES = 500;

/**
 * Edit distance with adjacent transpositions (optimal string alignment), so `sorce` and `soucre` both match.
 * Three rolling rows rather than a matrix: memory is the length of `b`, not the product.
 */
export function editDistance(a: string, b: string): number {
  const cols = b.length + 1;
  let before = new Array<number>(cols).fill(0);
  let prev = Array.from({ length: cols }, (_, j) => j);
  let cur = new Array<number>(cols).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        cur[j] = Math.min(cur[j], before[j - 2] + 1);
      }
    }
    [before, prev, cur] = [prev, cur, before];
  }
  return prev[cols - 1];
}

/**
 * The closest candidate, or undefined when nothing is close enough to be a plausible typo.
 * The allowance grows with the word so that short keys do not match everything.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > MAX_WORD) return undefined;
  const lower = word.toLowerCase();
  const allowed = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  let n = 0;
  for (const c of candidates) {
    if (n++ >= MAX_CANDIDATES) break;
    // The distance is at least the difference in length: skip what cannot be within the allowance.
    if (Math.abs(c.length - word.length) > allowed) continue;
    const dist = editDistance(lower, c.toLowerCase());
    if (dist < bestDistance || (dist === bestDistance && best !== undefined && c < best)) {
      best = c;
      bestDistance = dist;
    }
  }
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}
