/** The mirror settings the catalog records, and how desired and recorded settings differ. Pure. */
import type { Mirror, MirrorSettings } from '../config/types.js';

export const SETTING_KEYS: (keyof MirrorSettings)[] = [
  'mode',
  'do_initial_snapshot',
  'snapshot_num_rows_per_partition',
  'snapshot_max_parallel_workers',
  'snapshot_num_tables_in_parallel',
  'max_batch_size',
  'idle_timeout_seconds',
  'replicate_indexes',
  'replicate_foreign_keys',
  'resync_strategy',
  'lag_threshold_ms',
  'paused',
  'prevent_destroy',
];

export function settingsOf(m: Mirror): MirrorSettings {
  const out: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) out[k] = m[k];
  return out as unknown as MirrorSettings;
}

export function changedSettings(recorded: Record<string, unknown>, desired: MirrorSettings) {
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) {
    if (JSON.stringify(recorded[k]) !== JSON.stringify(desired[k])) {
      before[k] = recorded[k] ?? null;
      after[k] = desired[k];
    }
  }
  return Object.keys(after).length ? { before, after } : null;
}
