/**
 * The event stream of `mirrors apply`: apply's own events plus what the command adds around them (the
 * version line, the plan it made, completion). JSON lines with --format json (docs/apply-json.md:
 * snake_case, bytes and rows as strings, integer milliseconds), else text through progress-text.ts.
 */
import cliProgress from 'cli-progress';
import kleur from 'kleur';
import type { ApplyEvent, Reporter } from '../apply/events.js';
import type { Plan } from '../plan/types.js';
import { SYMBOL } from '../render/text.js';
import { formatBytes, formatDuration } from '../util/format.js';
import type { Io } from './io.js';

export const APPLY_STREAM_VERSION = 1;

export type StreamEvent =
  | ApplyEvent
  | { type: 'version'; createdBy: string }
  | { type: 'plan'; plan: Plan }
  | { type: 'apply_complete'; done: number; total: number }
  | { type: 'stop' };

export type StreamReporter = (e: StreamEvent) => void;

export function jsonReporter(io: Io): StreamReporter {
  const line = (o: Record<string, unknown>) => io.out(JSON.stringify({ ...o, at: new Date().toISOString() }) + '\n');
  return (e) => {
    switch (e.type) {
      case 'version':
        return line({ type: 'version', format_version: APPLY_STREAM_VERSION, tool: 'mirrors', created_by: e.createdBy });
      case 'plan':
        return line({ type: 'plan', plan: e.plan });
      case 'lock_wait':
        return line({ type: 'lock_wait', mirror: e.mirror, holder: e.holder });
      case 'action_start':
        return line({ type: 'action_start', index: e.index, total: e.total, action: brief(e.action) });
      case 'action_done':
        return line({ type: 'action_done', index: e.index, total: e.total, action: brief(e.action), ms: Math.round(e.ms) });
      case 'action_failed':
        return line({ type: 'action_failed', index: e.index, total: e.total, action: brief(e.action), message: e.message, postgres: e.pg ?? null });
      case 'snapshot_progress':
        return line({
          type: 'snapshot_progress', mirror: e.mirror, table: e.table, table_done: e.tableDone,
          rows_done: String(e.rowsDone), bytes_done: String(e.bytesDone), bytes_total: String(e.bytesTotal),
          mirror_bytes_done: String(e.mirrorBytesDone), mirror_bytes_total: String(e.mirrorBytesTotal),
        });
      case 'apply_complete':
        return line({ type: 'apply_complete', done: e.done, total: e.total });
      case 'stop':
        return;
    }
  };
}

function brief(a: { id: string; address: string; kind: string; op: string; risk: string }) {
  return { id: a.id, address: a.address, kind: a.kind, op: a.op, risk: a.risk };
}

export function textReporter(io: Io, tty: boolean): StreamReporter {
  const apply = applyTextReporter(io, tty);
  return (e) => {
    switch (e.type) {
      case 'version':
      case 'plan':
        return;
      case 'apply_complete':
        io.out(e.total === 0 ? 'No changes. The mirrors match the configuration.\n' : `\nApply complete: ${e.done} action${e.done === 1 ? '' : 's'} done.\n`);
        return;
      case 'stop':
        apply.stop();
        return;
      default:
        apply(e);
    }
  };
}

function applyTextReporter(io: Io, tty: boolean): Reporter & { stop(): void } {
  let multi: cliProgress.MultiBar | null = null;
  const bars = new Map<string, cliProgress.SingleBar>();
  const started = new Map<string, number>();
  let lastPlain = 0;
  const print = (line: string) => {
    if (multi) multi.log(line + '\n');
    else io.out(line + '\n');
  };
  const stopBars = () => {
    multi?.stop();
    multi = null;
    bars.clear();
  };
  const reporter = ((e: ApplyEvent) => {
    switch (e.type) {
      case 'lock_wait':
        print(kleur.yellow(`waiting for the lock of mirror ${e.mirror}, held by ${e.holder}`));
        return;
      case 'action_start':
        if (e.action.kind === 'snapshot') print(`${SYMBOL[e.action.op].padStart(3)} ${e.action.address}: ${e.action.reason}`);
        return;
      case 'action_done':
        stopBars();
        print(`${kleur.green(SYMBOL[e.action.op].padStart(3))} ${e.action.address} ${kleur.dim(`done in ${formatDuration(e.ms)} (${e.index + 1}/${e.total})`)}`);
        return;
      case 'action_failed':
        stopBars();
        print(`${kleur.red('  !')} ${e.action.address} ${kleur.red('failed')}: ${e.message}`);
        return;
      case 'snapshot_progress': {
        const key = `${e.mirror}\u0000${e.table}`;
        if (!started.has(key)) started.set(key, Date.now());
        const elapsed = (Date.now() - started.get(key)!) / 1000;
        const rate = elapsed > 0 ? e.bytesDone / elapsed : 0;
        if (tty) {
          if (!multi) {
            multi = new cliProgress.MultiBar(
              { format: '  {table} [{bar}] {percentage}% | {rows} rows | {done}/{size} | {rate}/s | ETA {eta_formatted}', hideCursor: true, clearOnComplete: false, stream: process.stdout },
              cliProgress.Presets.shades_classic,
            );
          }
          let bar = bars.get(key);
          const payload = { table: e.table.padEnd(28).slice(0, 28), rows: e.rowsDone, done: formatBytes(e.bytesDone), size: formatBytes(e.bytesTotal), rate: formatBytes(rate) };
          if (!bar) {
            bar = multi.create(Math.max(e.bytesTotal, 1), 0, payload);
            bars.set(key, bar);
          }
          bar.setTotal(Math.max(e.bytesTotal, e.bytesDone, 1));
          bar.update(e.bytesDone, payload);
          return;
        }
        const now = Date.now();
        if (e.tableDone) {
          print(`    ${e.table}: copied ${e.rowsDone} rows, ${formatBytes(e.bytesDone)} in ${formatDuration(elapsed * 1000)} (${formatBytes(rate)}/s); mirror ${e.mirror} ${pct(e.mirrorBytesDone, e.mirrorBytesTotal)}`);
        } else if (now - lastPlain >= 5000) {
          lastPlain = now;
          const eta = rate > 0 ? ((e.bytesTotal - e.bytesDone) / rate) * 1000 : Infinity;
          print(`    ${e.table}: ${e.rowsDone} rows, ${formatBytes(e.bytesDone)} of ~${formatBytes(e.bytesTotal)} (${formatBytes(rate)}/s, ETA ${formatDuration(eta)})`);
        }
        return;
      }
    }
  }) as Reporter & { stop(): void };
  reporter.stop = stopBars;
  return reporter;
}

function pct(done: number, total: number): string {
  return total > 0 ? `${Math.min(100, Math.round((done / total) * 100))}% of ~${formatBytes(total)}` : '';
}
