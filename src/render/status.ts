/**
 * Text and JSON rendering of a StatusReport (status/model.ts). Reads the report only; computes no status.
 * Colors through kleur (green Following; yellow Degraded, Bootstrapping, Paused; red Disconnected, Failed);
 * the CLI decides whether color is on.
 */
import kleur from 'kleur';
import { displayQualified } from '../config/names.js';
import type { MergeProgress, MirrorReport, StatusName, StatusReport, SyncReport } from '../status/model.js';
import type { ErrorRecord } from '../status/stored-error.js';
import { STATUS_NAMES } from '../status/model.js';
import { formatBytes, formatDuration } from '../util/format.js';

export function renderStatusJson(report: StatusReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

export function paintStatus(name: StatusName, text: string = name): string {
  switch (name) {
    case 'Following':
      return kleur.green(text);
    case 'Degraded':
    case 'Bootstrapping':
    case 'Paused':
      return kleur.yellow(text);
    case 'Disconnected':
    case 'Failed':
      return kleur.red(text);
    case 'Promoted':
      return kleur.cyan(text);
    default:
      return kleur.dim(text);
  }
}

/** Pads cells to column widths measured on the uncolored text; numeric columns align right. */
function table(rows: string[][], rightAligned: Set<number>, indent: string): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
  );
}

const or = (v: string | null | undefined, dash = '-') => (v === null || v === undefined ? dash : v);

function ago(at: string | null, now: string): string {
  if (!at) return '-';
  const ms = Date.parse(now) - Date.parse(at);
  return Number.isFinite(ms) ? `${at} (${formatDuration(Math.max(0, ms))} ago)` : at;
}

/** "`mirrors apply` pid 42 on host since T (5s ago) holds the apply lock", as far as the holder is recorded. */
function applyLockText(l: NonNullable<MirrorReport['apply_lock']>, now: string): string {
  if (l.command === null) return 'an apply holds the apply lock (its holder is not recorded yet)';
  return `\`${l.command}\` pid ${or(l.pid === null ? null : String(l.pid))} on ${or(l.host)} since ${ago(l.since, now)} holds the apply lock`;
}

const sameError = (a: ErrorRecord, b: ErrorRecord | undefined) => JSON.stringify(a) === JSON.stringify(b);

/** The worker's last error (time, kind, code, message, hint) and how many earlier ones the catalog keeps. */
function errorLines(m: MirrorReport, now: string, label: (l: string) => string): string[] {
  const history = m.error_history ?? [];
  const e = m.last_error;
  if (e === null) {
    // Cleared once the worker streams again; the history still tells of a mirror that keeps failing.
    const last = history[0];
    return last
      ? [
          `  ${label('errors')}  ${kleur.dim(`${plural(history.length, 'error')} in error_history, the newest ${last.at ? `${ago(last.at, now)}: ` : ''}${last.message}`)}`,
        ]
      : [];
  }
  const head = [e.at === null ? null : ago(e.at, now), e.kind, e.code].filter((x) => x !== null).join('  ');
  const out = [`  ${label('last err')}  ${head ? `${head}  ` : ''}${kleur.red(e.message)}`];
  if (e.hint) out.push(`  ${label('')}  ${kleur.dim('hint: ' + e.hint)}`);
  // drift: what differs between the source's and the destination's table definitions.
  if (e.diff)
    out.push(
      ...e.diff
        .trimEnd()
        .split('\n')
        .map((l) => `  ${label('')}    ${l}`),
    );
  // The worker records an error in error_history (newest first) as it sets last_error.
  const earlier = history.length - (sameError(e, history[0]) ? 1 : 0);
  if (earlier > 0) out.push(`  ${label('')}  ${kleur.dim(`${plural(earlier, 'earlier error')} in error_history`)}`);
  return out;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** " (chunk 3, after key (6000))" of a merge resync under way. */
function mergeProgress(m: MergeProgress): string {
  if (!m.chunks) return ' (waiting for the worker)';
  return ` (chunk ${m.chunks}${m.cursor ? `, after key (${m.cursor.join(', ')})` : ''})`;
}

function statusLine(m: MirrorReport): string {
  const s = m.status;
  let extra = '';
  if (s.name === 'Bootstrapping' && s.bytes_total !== '0')
    extra = ` ${formatBytes(s.bytes_done)} of ${formatBytes(s.bytes_total)}`;
  if (s.name === 'Degraded' && s.lag_ms !== null) extra = ` lag ${formatDuration(s.lag_ms)}`;
  return `${kleur.bold(m.name)}  ${m.source} -> ${m.destination}  ${m.mode}  ${paintStatus(s.name, kleur.bold(s.name))}${extra}  ${kleur.dim(s.reason)}`;
}

export function renderMirrorText(m: MirrorReport, now: string): string {
  const out = [statusLine(m)];
  const label = (l: string) => kleur.dim(l.padEnd(9));
  for (const e of m.errors) {
    // The status line already says it when this error is why the mirror is Disconnected.
    if (e.message !== m.status.reason) out.push(`  ${label('error')}  ${kleur.red(e.message)}`);
    if (e.hint) out.push(`  ${label('')}  ${kleur.dim('hint: ' + e.hint)}`);
  }
  if (m.status.name === 'NotCreated' || m.phase === null) return out.join('\n');

  const lag = m.lag_ms === null ? '-' : formatDuration(m.lag_ms);
  const lagBytes = m.lag_bytes === null ? '-' : formatBytes(m.lag_bytes);
  out.push(
    `  ${label('applied')}  ${or(m.last_applied_lsn)}  lag ${lag}, ${lagBytes} of WAL (threshold ${formatDuration(m.lag_threshold_ms)})`,
  );
  out.push(`  ${label('')}  last commit ${ago(m.last_commit_time, now)}, last apply ${ago(m.last_apply_at, now)}`);
  if (m.sync) out.push(`  ${label('sync')}  ${syncLine(m.sync, now)}`);
  out.push(
    `  ${label('rows')}  ${or(m.rows_applied, '0')} applied (tables: ${m.rows.inserted} inserted, ${m.rows.updated} updated, ${m.rows.deleted} deleted)`,
  );
  if (m.status.name === 'Bootstrapping') {
    out.push(
      `  ${label('snapshot')}  phase ${m.phase}, ${formatBytes(m.status.bytes_done)} of ${formatBytes(m.status.bytes_total)} copied`,
    );
  }
  const w = m.worker;
  const who =
    w.host !== null
      ? `${w.host} pid ${or(w.pid === null ? null : String(w.pid))} since ${or(w.since)}`
      : 'none recorded';
  const beat = w.heartbeat_age_ms === null ? '' : `, heartbeat ${formatDuration(w.heartbeat_age_ms)} ago`;
  out.push(`  ${label('worker')}  ${w.lease_held ? 'holds the lease' : 'no lease holder'}; last: ${who}${beat}`);
  if (m.slot) {
    const s = m.slot;
    out.push(
      s.exists
        ? `  ${label('slot')}  ${s.name}  ${s.active ? 'active' : 'inactive'}  wal_status ${or(s.wal_status)}  retained ${s.retained_bytes === null ? '-' : formatBytes(s.retained_bytes)}  confirmed ${or(s.confirmed_flush_lsn)}`
        : `  ${label('slot')}  ${kleur.red(`${s.name} missing`)}`,
    );
  }
  if (m.apply_lock?.held) out.push(`  ${label('apply')}  ${applyLockText(m.apply_lock, now)}`);
  out.push(...errorLines(m, now, label));
  if (m.tables.length) {
    const rows = [
      ['SOURCE', 'DESTINATION', 'STATE', 'SNAPSHOT LSN', 'COPIED', 'INSERTED', 'UPDATED', 'DELETED'],
      ...m.tables.map((t) => [
        displayQualified(t.source),
        displayQualified(t.destination),
        t.merge ? `${t.state}, merging${mergeProgress(t.merge)}` : t.state,
        or(t.snapshot_lsn),
        t.rows_copied,
        t.rows_inserted,
        t.rows_updated,
        t.rows_deleted,
      ]),
    ];
    const lines = table(rows, new Set([4, 5, 6, 7]), '    ');
    out.push(`  ${kleur.dim('tables')}`, kleur.dim(lines[0]), ...lines.slice(1));
  }
  return out.join('\n');
}

export function summaryText(report: StatusReport): string {
  const n = report.summary.total;
  if (n === 0) return 'No mirrors selected.';
  const parts = STATUS_NAMES.filter((s) => report.summary.by_status[s] > 0).map((s) =>
    paintStatus(s, `${report.summary.by_status[s]} ${s}`),
  );
  return `${n} mirror${n === 1 ? '' : 's'}: ${parts.join(', ')}.`;
}

export function renderStatusText(report: StatusReport): string {
  const blocks = report.mirrors.map((m) => renderMirrorText(m, report.generated_at));
  return [...blocks, summaryText(report)].join('\n\n') + '\n';
}

/** Whether source commits wait for a sync mirror now (pg_stat_replication), since when. */
function syncLine(s: SyncReport, now: string): string {
  const since = s.since ? ` since ${ago(s.since, now)}` : '';
  if (s.synchronous) return kleur.green(`synchronous (sync_state ${s.state})${since}: source commits wait for it`);
  const state = s.state ? `sync_state ${s.state}` : 'no walsender';
  if (s.listed)
    return kleur.red(
      `not answering (${state})${since}, but listed in synchronous_standby_names = '${s.synchronous_standby_names}': source commits that need it wait`,
    );
  const why = s.degraded_since
    ? `degraded ${ago(s.degraded_since, now)} (on_sync_loss)`
    : 'not in synchronous_standby_names';
  return kleur.yellow(`not synchronous (${state}, ${why})${since}: source commits do not wait for it`);
}
