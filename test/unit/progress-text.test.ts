import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import kleur from 'kleur';
import type { ApplyEvent } from '../../src/apply/events.js';
import type { Action } from '../../src/plan/types.js';
import type { Io } from '../../src/cli/io.js';
import { displayWidth, formatProgressLine, textReporter, type ProgressView } from '../../src/cli/progress-text.js';

const MB = 1024 * 1024;
// eslint-disable-next-line no-control-regex
const CSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const strip = (s: string) => s.replace(CSI, '');

const view = (over: Partial<ProgressView> = {}): ProgressView => ({
  table: 'public.orders',
  rowsDone: 514_321,
  bytesDone: 45 * MB,
  bytesTotal: 146 * MB,
  estimated: true,
  done: false,
  rate: 8 * MB,
  etaMs: 13_000,
  ...over,
});

const awkward: ProgressView[] = [
  view(),
  view({ table: 'analytics.' + 'very_long_table_name_'.repeat(10), nameWidth: 250 }),
  view({ table: '"weird\nname"\twith\x1b[31mcontrol' }),
  view({ table: 'public.注文履歴テーブル_とても長い名前のテーブル', nameWidth: 60 }),
  view({ rowsDone: 1e15, bytesDone: 8e15, bytesTotal: Number.MAX_SAFE_INTEGER, rate: 1e13, etaMs: 1e13 }),
  view({ rowsDone: 0, bytesDone: 0, bytesTotal: 0, rate: null, etaMs: null }),
  view({
    rowsDone: 123_456_789,
    bytesDone: 987_654_321_000,
    bytesTotal: 987_654_321_000,
    estimated: false,
    done: true,
    rate: 1023.6 * MB,
    etaMs: null,
    elapsedMs: 1e9,
  }),
  view({ rate: 0.3333, bytesDone: 1023.7, bytesTotal: 1023.9 }),
];

describe('formatProgressLine', () => {
  const was = kleur.enabled;
  afterEach(() => (kleur.enabled = was));

  it('a progress line never exceeds the terminal width, with or without colour, at any width', () => {
    for (const color of [false, true]) {
      kleur.enabled = color;
      for (const p of awkward) {
        for (let columns = 1; columns <= 200; columns++) {
          const line = formatProgressLine(p, columns);
          expect(displayWidth(line), `${columns} columns: ${JSON.stringify(line)}`).toBeLessThanOrEqual(columns);
          expect(line).not.toMatch(/[\n\r\t]/);
        }
      }
    }
  });

  it('colour codes do not count toward the width: the coloured line has the layout of the plain one', () => {
    kleur.enabled = false;
    const plain = formatProgressLine(view(), 119);
    kleur.enabled = true;
    const colored = formatProgressLine(view(), 119);
    expect(colored).toMatch(CSI);
    expect(strip(colored)).toBe(plain);
  });

  it('totals are human units: no run of 7 or more digits at any width', () => {
    kleur.enabled = false;
    for (const p of awkward) {
      for (let columns = 40; columns <= 200; columns += 7) expect(formatProgressLine(p, columns)).not.toMatch(/\d{7,}/);
    }
    const line = formatProgressLine(view({ bytesDone: 45 * MB, bytesTotal: 153_190_400 }), 119);
    expect(line).toContain('45 MB/~146 MB');
  });

  it('at 120 columns the line shows table name, bar, %, rows, bytes done/total, rate and ETA', () => {
    kleur.enabled = false;
    const line = formatProgressLine(view(), 119);
    expect(line).toMatch(/^ {2}public\.orders +█+░+ +30% +514k rows +45 MB\/~146 MB +8\.0 MB\/s +ETA 13s$/);
  });

  it('narrow widths shrink the bar first, then truncate the name with an ellipsis, then drop rows and rate', () => {
    kleur.enabled = false;
    const p = view({ table: 'public.customer_addresses' });
    const bar = (l: string) => (l.match(/[█░]+/) ?? [''])[0].length;
    const wide = formatProgressLine(p, 119);
    const narrower = formatProgressLine(p, 100);
    expect(narrower).toContain('public.customer_addresses ');
    expect(bar(narrower)).toBeLessThan(bar(wide));
    expect(narrower).toMatch(/rows.*MB\/s.*ETA/);
    const truncated = formatProgressLine(p, 85);
    expect(bar(truncated)).toBe(8);
    expect(truncated).toMatch(/public\.custom\w*… /);
    expect(truncated).toMatch(/rows.*MB\/s.*ETA/);
    const narrow = formatProgressLine(p, 59);
    expect(narrow).toMatch(/█|░/);
    expect(narrow).toMatch(/\d+%.*45 MB\/~146 MB.*ETA 13s/);
    expect(narrow).not.toContain('rows');
  });

  it('names of parallel tables line up: they are padded to the shared name column', () => {
    kleur.enabled = false;
    const a = formatProgressLine(view({ table: 'public.t', nameWidth: 25 }), 119);
    const b = formatProgressLine(view({ table: 'public.customer_addresses', nameWidth: 25 }), 119);
    expect(a.indexOf('█')).toBe(b.indexOf('█'));
    expect(a.indexOf('%')).toBe(b.indexOf('%'));
  });

  it('shows the estimate as ~X while copying and the real size without ~ at 100% once done', () => {
    kleur.enabled = false;
    expect(formatProgressLine(view(), 119)).toContain('/~146 MB');
    const done = formatProgressLine(
      view({ bytesDone: 150 * MB, bytesTotal: 150 * MB, estimated: false, done: true, etaMs: null, elapsedMs: 19_000 }),
      119,
    );
    expect(done).toMatch(/100% .*150 MB\/150 MB .*took 19s$/);
    expect(done).not.toContain('~');
  });

  it('a table still copying shows at most 99%, even once its bytes reach the estimate', () => {
    kleur.enabled = false;
    expect(formatProgressLine(view({ bytesDone: 146 * MB, bytesTotal: 146 * MB }), 119)).toMatch(/ 99% /);
  });

  it('shows "?" for an unknown rate and ETA', () => {
    kleur.enabled = false;
    expect(formatProgressLine(view({ rate: null, etaMs: null }), 119)).toMatch(/\?\/s +ETA \?$/);
  });
});

// ---- the reporter, driven with synthetic events and a fake Io ----

const action = {
  id: 'a1',
  address: 'mirror.shop.snapshot',
  kind: 'snapshot',
  op: 'create',
  reason: 'initial copy',
} as unknown as Action;

function fakeIo(): Io & { text: () => string } {
  const chunks: string[] = [];
  return {
    out: (t) => void chunks.push(t),
    err: (t) => void chunks.push(t),
    stdoutIsTty: true,
    stdinIsTty: false,
    text: () => chunks.join(''),
  };
}

/** The visible text of every line segment the terminal was given, split where the cursor moves. */
function segments(out: string): string[] {
  return out
    .split(/\x1b\[\d*[ABCDEFGH]|\x1b\[\d*;\d*H|\n|\r/)
    .map(strip)
    .filter((s) => s.trim() !== '');
}

const progress = (
  table: string,
  bytesDone: number,
  estimate: number,
  over: Partial<Extract<ApplyEvent, { type: 'snapshot_progress' }>> = {},
): ApplyEvent => ({
  type: 'snapshot_progress',
  mirror: 'shop',
  table,
  rowsDone: Math.round(bytesDone / 100),
  bytesDone,
  // As copy.ts reports it: the estimate, never below bytesDone.
  bytesTotal: Math.max(estimate, bytesDone),
  tableDone: false,
  mirrorBytesDone: bytesDone,
  mirrorBytesTotal: estimate,
  ...over,
});

describe('textReporter on a terminal', () => {
  const was = kleur.enabled;
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    kleur.enabled = true;
  });
  afterEach(() => {
    vi.useRealTimers();
    kleur.enabled = was;
  });

  /** Feeds one table copied at a steady speed; the estimate is 100 MB, the table really has `real` bytes. */
  function copyTable(r: ReturnType<typeof textReporter>, table: string, real: number, perTick: number) {
    let done = 0;
    while (done < real) {
      vi.advanceTimersByTime(250);
      done = Math.min(real, done + perTick);
      // copy.ts's last report of a table has bytesTotal = bytesDone, whatever the estimate was.
      r(progress(table, done, done === real ? done : 100 * MB));
    }
    vi.advanceTimersByTime(250);
    r(progress(table, real, real, { tableDone: true }));
  }

  for (const [what, real] of [
    ['too small', 150 * MB],
    ['too large', 80 * MB],
  ] as const) {
    it(`the bar never passes 100% nor goes backwards when the estimate is ${what}, and ends at the real size`, () => {
      const io = fakeIo();
      const r = textReporter(io, { tty: true, columns: 120 });
      r({ type: 'action_start', action, index: 0, total: 1 });
      copyTable(r, 'public.orders', real, 2 * MB);
      r({ type: 'action_done', action, index: 0, total: 1, ms: 19_000 });
      r.stop();

      const lines = segments(io.text()).filter((l) => l.includes('public.orders') && l.includes('%'));
      expect(lines.length).toBeGreaterThan(20);
      const copying = lines.filter((l) => !l.includes('took'));
      const pcts = lines.map((l) => Number(l.match(/(\d+)%/)![1]));
      const fills = lines.map((l) => (l.match(/█/g) ?? []).length);
      const totals = copying.map((l) => l.match(/\/~(\d+(?:\.\d)?) MB/)![1]).map(Number);
      for (let i = 1; i < lines.length; i++) {
        expect(pcts[i], lines[i]).toBeGreaterThanOrEqual(pcts[i - 1]);
        expect(fills[i], lines[i]).toBeGreaterThanOrEqual(fills[i - 1]);
      }
      for (let i = 1; i < totals.length; i++) expect(totals[i], copying[i]).toBeGreaterThanOrEqual(totals[i - 1]);
      expect(Math.max(...pcts)).toBe(100);
      // Only the finished line says 100%, and it shows the real size, not the estimate.
      const mb = real / MB;
      expect(
        lines.filter((l) => l.includes('100%')).every((l) => l.includes(`${mb} MB/${mb} MB`) && l.includes('took')),
      ).toBe(true);
      expect(lines.at(-1)).toMatch(new RegExp(`100%.* ${mb} MB/${mb} MB .*took`));
      if (real > 100 * MB) {
        // Copying past the estimate, the total grows with the bytes done.
        expect(copying.some((l) => / 99% .*\b120 MB\/~120 MB/.test(l))).toBe(true);
      } else {
        // Short of it, the estimate stays put until the real size replaces it at the end.
        expect(new Set(totals)).toEqual(new Set([100]));
      }
    });
  }

  it('every line drawn on the terminal fits its width, and totals are human units', () => {
    for (const columns of [40, 60, 80, 120, 200]) {
      const io = fakeIo();
      const r = textReporter(io, { tty: true, columns });
      r({ type: 'action_start', action, index: 0, total: 1 });
      let done = 0;
      for (let i = 0; i < 40; i++) {
        vi.advanceTimersByTime(250);
        done += 37 * MB;
        // An ETA of tens of minutes fills its field, so the line reaches its full width.
        r(progress('analytics.' + 'event_'.repeat(20), done * 1000, 500_000_000 * MB));
        r(progress('public.t', done, 2_000 * MB));
      }
      r(progress('public.t', done, done, { tableDone: true }));
      vi.advanceTimersByTime(250);
      r({ type: 'action_done', action, index: 0, total: 1, ms: 10_000 });
      r.stop();
      const segs = segments(io.text());
      const bars = segs.filter((s) => s.includes('%'));
      expect(bars.length).toBeGreaterThan(10);
      for (const s of bars) {
        expect(displayWidth(s), `${columns}: ${s}`).toBeLessThan(columns);
        expect(s).not.toMatch(/\d{7,}/);
      }
    }
  });

  it('the rate is a moving average and the ETA follows from it', () => {
    const io = fakeIo();
    const r = textReporter(io, { tty: true, columns: 120 });
    let done = 0;
    // 20 s at 1 MB/s, then 20 s at 4 MB/s: the average forgets the slow part within its window.
    for (let i = 0; i < 160; i++) {
      vi.advanceTimersByTime(250);
      done += (i < 80 ? 1 : 4) * 0.25 * MB;
      r(progress('public.orders', done, 1000 * MB));
      if (i === 79) {
        vi.advanceTimersByTime(100);
        const slow = segments(io.text()).at(-1)!;
        expect(slow).toMatch(/ 1\.0 MB\/s +ETA 16m20s/);
      }
    }
    vi.advanceTimersByTime(100);
    const fast = segments(io.text()).at(-1)!;
    expect(fast).toMatch(/ 4\.0 MB\/s +ETA 3m45s/);
    r.stop();
  });

  it('the rate and ETA are "?" until there is a second of history', () => {
    const io = fakeIo();
    const r = textReporter(io, { tty: true, columns: 120 });
    r(progress('public.orders', 1 * MB, 100 * MB));
    vi.advanceTimersByTime(150);
    expect(segments(io.text()).at(-1)).toMatch(/\?\/s +ETA \?$/);
    r.stop();
  });

  it('a finished table becomes a permanent line above the tables still copying', () => {
    const io = fakeIo();
    const r = textReporter(io, { tty: true, columns: 120 });
    for (let i = 1; i <= 8; i++) {
      vi.advanceTimersByTime(250);
      r(progress('public.small', i * MB, 8 * MB));
      r(progress('public.big', i * 10 * MB, 1000 * MB));
    }
    r(progress('public.small', 8 * MB, 8 * MB, { tableDone: true }));
    vi.advanceTimersByTime(250);
    r(progress('public.big', 90 * MB, 1000 * MB));
    vi.advanceTimersByTime(250);
    const out = io.text();
    // The final line of public.small was written once, as a log line ending in a newline.
    expect(strip(out).match(/public\.small +█+ 100%[^\n]*\n/g)).toHaveLength(1);
    const last = segments(out).slice(-2);
    expect(last.some((s) => s.includes('public.big'))).toBe(true);
    r.stop();
    expect(io.text().endsWith('\n')).toBe(true);
    expect(io.text()).toContain('\x1b[?25h');
  });
});

describe('textReporter without a terminal', () => {
  const was = kleur.enabled;
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    kleur.enabled = false;
  });
  afterEach(() => {
    vi.useRealTimers();
    kleur.enabled = was;
  });

  it('prints one line per finished table and a progress line at most every 5 s per table, never cut to a width', () => {
    const io = fakeIo();
    const r = textReporter(io, { tty: false, columns: 40 });
    r({ type: 'action_start', action, index: 0, total: 1 });
    const long = 'analytics.' + 'event_'.repeat(12) + 'log';
    // 12 s of copying, a report every 250 ms.
    for (let i = 1; i <= 48; i++) {
      vi.advanceTimersByTime(250);
      r(progress(long, i * 3 * MB, 300 * MB));
      r(progress('public.t', i * 100_000, 10 * MB));
    }
    r(progress('public.t', 4_800_000, 4_800_000, { tableDone: true }));
    r(progress(long, 150 * MB, 150 * MB, { tableDone: true }));
    r({ type: 'action_done', action, index: 0, total: 1, ms: 12_000 });

    const lines = io.text().trimEnd().split('\n');
    expect(io.text()).not.toMatch(CSI);
    expect(lines.filter((l) => l.includes(`${long}: `) && l.includes('ETA'))).toHaveLength(2); // 5 s and 10 s into the table
    expect(lines.filter((l) => l.includes('public.t: ') && l.includes('ETA'))).toHaveLength(2);
    expect(lines.find((l) => l.includes(`${long}: `) && l.includes('ETA'))).toMatch(
      /: 661k rows, 63 MB of ~300 MB \(12 MB\/s, ETA 20s\)$/,
    );
    expect(lines.filter((l) => l.includes('copied'))).toEqual([
      '    public.t: copied 48.0k rows, 4.6 MB in 12s (391 kB/s); mirror shop 100% of ~4.6 MB',
      `    ${long}: copied 1.6M rows, 150 MB in 12s (13 MB/s); mirror shop 100% of ~150 MB`,
    ]);
    expect(lines.some((l) => l.length > 40)).toBe(true);
    expect(io.text()).not.toMatch(/\d{7,}/);
    expect(lines.at(-1)).toMatch(/mirror\.shop\.snapshot done in 12s \(1\/1\)$/);
  });

  it('reports a lock wait and a failed action', () => {
    const io = fakeIo();
    const r = textReporter(io, { tty: false });
    r({ type: 'lock_wait', mirror: 'shop', holder: 'pid 42 on host a' });
    r({ type: 'action_failed', action, index: 0, total: 1, message: 'relation "x" does not exist' });
    expect(io.text()).toBe(
      'waiting for the lock of mirror shop, held by pid 42 on host a\n  ! mirror.shop.snapshot failed: relation "x" does not exist\n',
    );
  });
});
