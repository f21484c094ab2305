/**
 * The event stream of `mirrors apply`: apply's own events plus what the command adds around them (the
 * version line, the plan it made, completion). JSON lines with --format json (docs/json-output.md:
 * snake_case, bytes and rows as strings, integer milliseconds), else text through progress-text.ts.
 */
import type { ApplyEvent } from '../apply/events.js';
import type { Plan } from '../plan/types.js';
import type { Io } from './io.js';
import { textReporter as applyTextReporter } from './progress-text.js';

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
        return line({
          type: 'version',
          format_version: APPLY_STREAM_VERSION,
          tool: 'mirrors',
          created_by: e.createdBy,
        });
      case 'plan':
        return line({ type: 'plan', plan: e.plan });
      case 'lock_wait':
        return line({ type: 'lock_wait', mirror: e.mirror, holder: e.holder });
      case 'promotion_step':
        return line({ type: 'promotion_step', mirror: e.mirror, step: e.step, ms: e.ms, detail: e.detail ?? null });
      case 'action_start':
        return line({ type: 'action_start', index: e.index, total: e.total, action: brief(e.action) });
      case 'action_done':
        return line({
          type: 'action_done',
          index: e.index,
          total: e.total,
          action: brief(e.action),
          ms: Math.round(e.ms),
        });
      case 'action_failed':
        return line({
          type: 'action_failed',
          index: e.index,
          total: e.total,
          action: brief(e.action),
          message: e.message,
          postgres: e.pg ?? null,
        });
      case 'snapshot_progress':
        return line({
          type: 'snapshot_progress',
          mirror: e.mirror,
          table: e.table,
          table_done: e.tableDone,
          rows_done: String(e.rowsDone),
          bytes_done: String(e.bytesDone),
          bytes_total: String(e.bytesTotal),
          mirror_bytes_done: String(e.mirrorBytesDone),
          mirror_bytes_total: String(e.mirrorBytesTotal),
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
  const apply = applyTextReporter(io, { tty });
  return (e) => {
    switch (e.type) {
      case 'version':
      case 'plan':
        return;
      case 'apply_complete':
        io.out(
          e.total === 0
            ? 'No changes. The mirrors match the configuration.\n'
            : `\nApply complete: ${e.done} action${e.done === 1 ? '' : 's'} done.\n`,
        );
        return;
      case 'stop':
        apply.stop();
        return;
      default:
        apply(e);
    }
  };
}
