/**
 * Text rendering of apply events for people: live snapshot bars on a terminal, plain lines without one.
 *
 * Owns: the per-table view of snapshot progress (one consistent total, moving-average rate, ETA) and the
 * layout of a progress line within the terminal width (formatProgressLine, pure).
 * Must not: decide anything about apply, write anywhere but through Io, emit raw byte counts, or draw a
 * line wider than the terminal. JSON output stays in progress.ts (jsonReporter).
 *
 * cli-progress only manages the live region (redraw throttling, cursor, log lines above the bars). Every
 * line it draws comes from our format function, so none of its tokens ({total}, {eta}, ...) are used and
 * payload keys can never collide with them.
 */
import cliProgress from 'cli-progress';
import kleur from 'kleur';
import type { ApplyEvent, Reporter } from '../apply/events.js';
import { SYMBOL } from '../render/text.js';
import { formatBytes, formatDuration } from '../util/format.js';
import type { Io } from './io.js';

/** What one progress line shows. Built by the reporter; plain data so formatProgressLine stays pure. */
export interface ProgressView {
  table: string;
  rowsDone: number;
  bytesDone: number;
  /** The one total shown: the estimate (never below bytesDone) while copying, the real size once done. */
  bytesTotal: number;
  /** bytesTotal is the planner's estimate, shown as "~X". */
  estimated: boolean;
  done: boolean;
  /** Bytes per second, moving average; null while unknown. */
  rate: number | null;
  /** Milliseconds left; null while unknown. */
  etaMs: number | null;
  /** Once done: how long the copy took (shown instead of the ETA). */
  elapsedMs?: number;
  /** Names are padded to this width, when it fits, so the bars of parallel tables line up. */
  nameWidth?: number;
}

// The rate averages over this window: long enough to smooth out part boundaries and bursts of small
// rows, short enough to follow a real change of speed.
const RATE_WINDOW_MS = 10_000;
// Below this much history a rate is noise, so it stays "?".
const RATE_MIN_SPAN_MS = 1_000;
const PLAIN_EVERY_MS = 5_000;
const BAR_MIN = 8;
const BAR_MAX = 40;
const NAME_MIN = 12;
// The name column takes at most this share of the width.
const NAME_SHARE = 0.35;

export function textReporter(io: Io, opts: { tty: boolean; columns?: number }): Reporter & { stop(): void } {
  const width = () => opts.columns ?? process.stdout.columns ?? 80;
  // Drawn lines stop one column short of the width: cli-progress clears to the right after each line,
  // and with autowrap off that erase would take the character in the last column.
  const lineWidth = () => Math.max(1, width() - 1);
  const tables = new Map<string, TableProgress>();
  const bars = new Map<string, cliProgress.SingleBar>();
  let multi: cliProgress.MultiBar | null = null;

  // The widest name shown since the bars started, so that the column stays put when a table finishes
  // and lines up with the finished lines above.
  let nameCol = 0;
  const nameWidth = () => nameCol;
  const render = (key: string) => formatProgressLine(tables.get(key)!.view(Date.now(), nameWidth()), lineWidth());
  // Everything, the bars included, goes through io.out; cli-progress only needs something stream-shaped.
  const stream = {
    isTTY: true,
    get columns() {
      return width();
    },
    write(s: string) {
      io.out(s);
      return true;
    },
  } as unknown as NodeJS.WriteStream;

  const print = (line: string) => {
    if (multi) multi.log(line + '\n');
    else io.out(line + '\n');
  };
  const stopBars = () => {
    if (!multi) return;
    // update() flushes lines logged since the last redraw; stop() alone would drop them.
    multi.update();
    multi.stop();
    multi = null;
    bars.clear();
    nameCol = 0;
  };

  const onProgress = (e: Extract<ApplyEvent, { type: 'snapshot_progress' }>) => {
    const key = `${e.mirror}\u0000${e.table}`;
    const now = Date.now();
    let t = tables.get(key);
    if (!t) {
      // Finished tables are forgotten, so a table copied again (a later snapshot action) starts afresh.
      t = new TableProgress(e.table, now);
      tables.set(key, t);
    }
    t.update(e, now);

    if (!opts.tty) {
      if (e.tableDone) {
        const v = t.view(now);
        print(
          `    ${v.table}: copied ${formatCount(v.rowsDone)} rows, ${formatBytes(v.bytesDone)} in ${formatDuration(v.elapsedMs ?? 0)} (${rateText(v.rate)}); mirror ${e.mirror} ${pct(e.mirrorBytesDone, e.mirrorBytesTotal)}`,
        );
        tables.delete(key);
      } else if (now - t.lastPlainAt >= PLAIN_EVERY_MS) {
        t.lastPlainAt = now;
        const v = t.view(now);
        print(
          `    ${v.table}: ${formatCount(v.rowsDone)} rows, ${formatBytes(v.bytesDone)} of ~${formatBytes(v.bytesTotal)} (${rateText(v.rate)}, ETA ${etaText(v.etaMs)})`,
        );
      }
      return;
    }

    const bar = bars.get(key);
    if (e.tableDone) {
      if (bar && bars.size === 1) {
        // The last live bar: stopping draws its final line in place and keeps it.
        stopBars();
      } else {
        // Finished tables leave the live region as a permanent line, so the region holds only the tables
        // being copied and never grows past the screen however many tables the mirror has.
        print(render(key));
        if (bar) {
          bars.delete(key);
          multi!.remove(bar);
        }
      }
      tables.delete(key);
      return;
    }
    if (!multi) {
      multi = new cliProgress.MultiBar({
        format: (_o, _p, payload: { key: string }) => render(payload.key),
        hideCursor: true,
        clearOnComplete: false,
        stream,
      });
    }
    // The bar's own value/total are unused (our format draws the line), so they never need setTotal.
    if (!bar) {
      nameCol = Math.max(nameCol, displayWidth(clean(e.table)));
      bars.set(key, multi.create(1, 0, { key }));
    }
  };

  const reporter = ((e: ApplyEvent) => {
    switch (e.type) {
      case 'lock_wait':
        print(kleur.yellow(`waiting for the lock of mirror ${e.mirror}, held by ${e.holder}`));
        return;
      case 'promotion_step':
        print(
          `    promotion of ${e.mirror}: ${e.step.replaceAll('_', ' ')} after ${formatDuration(e.ms)}${e.detail ? kleur.dim(` (${e.detail})`) : ''}`,
        );
        return;
      case 'action_start':
        if (e.action.kind === 'snapshot')
          print(`${SYMBOL[e.action.op].padStart(3)} ${e.action.address}: ${e.action.reason}`);
        return;
      case 'action_done':
        stopBars();
        // A table copied again by a later action must not inherit this action's estimate or samples.
        tables.clear();
        print(
          `${kleur.green(SYMBOL[e.action.op].padStart(3))} ${e.action.address} ${kleur.dim(`done in ${formatDuration(e.ms)} (${e.index + 1}/${e.total})`)}`,
        );
        return;
      case 'action_failed':
        stopBars();
        tables.clear();
        print(`${kleur.red('  !')} ${e.action.address} ${kleur.red('failed')}: ${e.message}`);
        return;
      case 'snapshot_progress':
        onProgress(e);
        return;
    }
  }) as Reporter & { stop(): void };
  reporter.stop = stopBars;
  return reporter;
}

/**
 * One table's progress as the user sees it. The events' bytesTotal is max(estimate, bytesDone) and
 * drops to bytesDone on a table's last part, so shown as is it keeps changing; here the estimate is fixed
 * at the first report and the total only ever grows with the bytes done, until the real size at the end.
 */
class TableProgress {
  private estimate: number | null = null;
  private bytesDone = 0;
  private rowsDone = 0;
  private samples: { t: number; bytes: number }[] = [];
  private first: { t: number; bytes: number } | null = null;
  done = false;
  lastPlainAt: number;

  constructor(
    readonly table: string,
    startedAt: number,
  ) {
    // The first plain line comes PLAIN_EVERY_MS into a table: a table copied faster only gets its final line.
    this.lastPlainAt = startedAt;
  }

  update(e: { rowsDone: number; bytesDone: number; bytesTotal: number; tableDone: boolean }, now: number) {
    if (e.tableDone) {
      this.done = true;
      this.bytesDone = e.bytesDone;
      this.rowsDone = e.rowsDone;
    } else {
      this.estimate ??= e.bytesTotal;
      // Counters never go backwards on screen, even if reports arrive out of order.
      this.bytesDone = Math.max(this.bytesDone, e.bytesDone);
      this.rowsDone = Math.max(this.rowsDone, e.rowsDone);
    }
    const s = { t: now, bytes: this.bytesDone };
    this.first ??= s;
    this.samples.push(s);
    // Keep one sample older than the window so the average always spans the whole window.
    while (this.samples.length > 2 && this.samples[1].t <= now - RATE_WINDOW_MS) this.samples.shift();
  }

  view(now: number, nameWidth?: number): ProgressView {
    const last = this.samples.at(-1);
    if (this.done) {
      const span = last && this.first ? last.t - this.first.t : 0;
      return {
        table: this.table,
        rowsDone: this.rowsDone,
        bytesDone: this.bytesDone,
        bytesTotal: this.bytesDone,
        estimated: false,
        done: true,
        // The whole copy's average: known however short it was.
        rate: span > 0 ? ((last!.bytes - this.first!.bytes) / span) * 1000 : null,
        etaMs: null,
        elapsedMs: span,
        nameWidth,
      };
    }
    const total = Math.max(this.estimate ?? 0, this.bytesDone);
    const oldest = this.samples[0];
    const span = last && oldest ? last.t - oldest.t : 0;
    const rate = span >= RATE_MIN_SPAN_MS ? ((last!.bytes - oldest.bytes) / span) * 1000 : null;
    const left = total - this.bytesDone;
    // Past the estimate nothing is known about what is left, so the ETA is "?" rather than 0.
    // Between reports the ETA counts down from the last one instead of standing still.
    const etaMs = rate && rate > 0 && left > 0 ? Math.max(0, (left / rate) * 1000 - (now - last!.t)) : null;
    return {
      table: this.table,
      rowsDone: this.rowsDone,
      bytesDone: this.bytesDone,
      bytesTotal: total,
      estimated: true,
      done: false,
      rate,
      etaMs,
      nameWidth,
    };
  }
}

type Part = 'rows' | 'rate' | 'bar' | 'eta' | 'bytes';
// Parts dropped in this order when even a minimal bar and a truncated name do not fit.
const DROP_ORDER: Part[] = ['rows', 'rate', 'bar', 'eta', 'bytes'];

/**
 * The progress line of one table, at most `columns` display columns wide (ANSI colors not counted):
 *   name  bar  pct  rows  done/~total  rate/s  ETA
 * Narrower widths first shrink the bar, then truncate the name with an ellipsis, then drop parts in
 * DROP_ORDER; a last-resort cut guarantees the width whatever the input.
 */
export function formatProgressLine(p: ProgressView, columns: number): string {
  const fraction = p.done ? 1 : p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  // A table still copying shows at most 99%: 100% means the copy finished, not that the estimate ran out.
  const percent = p.done ? 100 : Math.min(99, Math.floor(fraction * 100));
  const fields: Record<Exclude<Part, 'bar'>, string> & { pct: string } = {
    pct: `${percent}%`.padStart(4),
    rows: `${formatCount(p.rowsDone)} rows`.padStart(10),
    bytes: bytesText(p).padStart(15),
    rate: rateText(p.rate).padStart(10),
    eta: (p.done ? `took ${formatDuration(p.elapsedMs ?? 0)}` : `ETA ${etaText(p.etaMs)}`).padEnd(10),
  };
  const name = clean(p.table);
  const indent = '  ';
  const sep = '  ';
  const build = (parts: Set<Part>, nameText: string, barWidth: number) => {
    const tail = (['rows', 'bytes', 'rate', 'eta'] as const).filter((k) => parts.has(k)).map((k) => sep + fields[k]);
    const head =
      indent +
      nameText +
      ' ' +
      (parts.has('bar') ? drawBar(percent / 100, barWidth) + ' ' : '') +
      kleur.bold(fields.pct);
    return head + tail.join('');
  };
  const parts = new Set<Part>(['rows', 'rate', 'bar', 'eta', 'bytes']);
  // One name column for all live lines (nameWidth), so their bars line up; capped so that a long name
  // does not squeeze everything else on a wide terminal.
  const column = Math.min(
    Math.max(displayWidth(name), p.nameWidth ?? 0),
    Math.max(NAME_MIN, Math.floor(columns * NAME_SHARE)),
  );
  for (let drop = 0; drop <= DROP_ORDER.length; drop++) {
    if (drop > 0) parts.delete(DROP_ORDER[drop - 1]);
    // Columns left for the name and the bar, measured with the fields' padding (trailing included) so that
    // every line of the region gets the same bar width whatever its values; trimEnd only tidies the end.
    const space = columns - displayWidth(build(parts, '', 0));
    if (parts.has('bar')) {
      if (space - column >= BAR_MIN)
        return build(parts, fit(name, column), Math.min(BAR_MAX, space - column)).trimEnd();
      if (space - BAR_MIN >= NAME_MIN) return build(parts, fit(name, space - BAR_MIN), BAR_MIN).trimEnd();
    } else {
      if (space >= column) return build(parts, fit(name, column), 0).trimEnd();
      if (space >= NAME_MIN) return build(parts, fit(name, space), 0).trimEnd();
    }
  }
  // Nothing fits whole: name and percentage, cut to the width.
  const minimal = build(new Set(), truncate(name, Math.max(1, columns - 7)), 0);
  return displayWidth(minimal) <= columns ? minimal : cutToWidth(minimal, columns);
}

function drawBar(fraction: number, width: number): string {
  const full = Math.min(width, Math.floor(fraction * width));
  return kleur.green('\u2588'.repeat(full)) + kleur.dim('\u2591'.repeat(width - full));
}

function bytesText(p: ProgressView): string {
  return `${formatBytes(Math.round(p.bytesDone))}/${p.estimated ? '~' : ''}${formatBytes(Math.round(p.bytesTotal))}`;
}

function rateText(rate: number | null): string {
  // formatBytes prints bytes below 1 kB unrounded, so the rate is rounded first.
  return rate === null ? '?/s' : `${formatBytes(Math.round(rate))}/s`;
}

function etaText(ms: number | null): string {
  if (ms === null) return '?';
  // Beyond 99 hours an ETA says nothing more than "long", and a longer text would shift the line.
  if (ms > 99 * 3_600_000) return '>99h';
  // Whole seconds, at least 1s: formatDuration shows milliseconds below a second.
  return formatDuration(Math.max(1000, Math.ceil(ms / 1000) * 1000));
}

/** 1234 -> "1234", 12345 -> "12.3k", 153190400 -> "153M": at most 5 characters up to 10^18. */
export function formatCount(n: number): string {
  if (n < 10_000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T', 'P'];
  let v = n;
  let i = -1;
  while (v >= 999.5 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 99.95 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

function pct(done: number, total: number): string {
  return total > 0 ? `${Math.min(100, Math.round((done / total) * 100))}% of ~${formatBytes(total)}` : '';
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Terminal columns taken by s: ANSI sequences take none, East Asian wide characters two. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s.replace(ANSI, '')) w += charWidth(ch.codePointAt(0)!);
  return w;
}

function charWidth(cp: number): number {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

/** Quoted identifiers may hold control characters; one would break the line, so it shows as "?". */
function clean(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/** s truncated or padded to exactly w columns. */
function fit(s: string, w: number): string {
  const t = truncate(s, w);
  return t + ' '.repeat(Math.max(0, w - displayWidth(t)));
}

/** s cut to max columns with an ellipsis; s has no ANSI sequences. */
function truncate(s: string, max: number): string {
  if (displayWidth(s) <= max) return s;
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > max - 1) break;
    out += ch;
    w += cw;
  }
  return out + '\u2026';
}

/** Last resort: keep ANSI sequences, cut visible characters at max columns, reset colors. */
function cutToWidth(s: string, max: number): string {
  let out = '';
  let w = 0;
  for (const token of s.split(/(\x1b\[[0-9;?]*[A-Za-z])/)) {
    if (token.startsWith('\x1b[')) {
      out += token;
      continue;
    }
    for (const ch of token) {
      const cw = charWidth(ch.codePointAt(0)!);
      if (w + cw > max) return out + (out.includes('\x1b[') ? '\x1b[0m' : '');
      out += ch;
      w += cw;
    }
  }
  return out;
}
