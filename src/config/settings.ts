/**
 * The one table of mirror settings: each setting's YAML key, built-in default and conversion. Everything
 * else that lists the settings derives from it: the MirrorSettings type, normalize.ts (merging built-in
 * defaults < `defaults:` < mirror), SETTING_KEYS (the settings the catalog records, diff/settings.ts),
 * schema.ts's "is a mirror setting" hint and the test fixtures. schemas/mirrors.schema.json and
 * docs/config.md are written by hand for people and editors; test/unit/config-settings.test.ts holds both
 * to this table. Adding a setting: a row here, a `setting_KEY` definition in the schema (referenced from
 * `defaults` and `mirror`), and a row in docs/config.md.
 */
import { parseDuration } from './duration.js';
import type { DroppedColumns, MirrorMode, ResyncStrategy, SchemaChanges } from './types.js';

interface SettingSpec<T> {
  /** The key in YAML when it differs from the MirrorSettings field (`lag_threshold` holds a duration). */
  yaml?: string;
  /** The built-in default, or a function of the mirror's mode for a default that depends on it. */
  default: T | ((mode: MirrorMode) => T);
  /** The validated YAML value to the field's value; absent when the value is used as it is. */
  fromYaml?: (value: unknown) => T;
}

const setting = <T>(spec: SettingSpec<T>): SettingSpec<T> => spec;

/** Default `lag_threshold` in ms by mode. Exported for status (which reports against the same default). */
export const DEFAULT_LAG_MS: Readonly<Record<MirrorMode, number>> = { async: 5_000, sync: 100 };

// Order matters: it is the order of SETTING_KEYS, hence of settings in plans and in the catalog's JSON.
const SETTINGS = {
  mode: setting<MirrorMode>({ default: 'async' }),
  do_initial_snapshot: setting<boolean>({ default: true }),
  snapshot_num_rows_per_partition: setting<number>({ default: 250_000 }),
  snapshot_max_parallel_workers: setting<number>({ default: 4 }),
  snapshot_num_tables_in_parallel: setting<number>({ default: 4 }),
  max_batch_size: setting<number>({ default: 1000 }),
  idle_timeout_seconds: setting<number>({ default: 60 }),
  replicate_indexes: setting<boolean>({ default: true }),
  replicate_foreign_keys: setting<boolean>({ default: true }),
  resync_strategy: setting<ResyncStrategy>({ default: 'truncate' }),
  /**
   * A source schema change (column added, renamed, dropped) reached by the stream: `plan` stops the mirror there
   * and the next plan proposes the DDL; `auto` lets the worker apply the ones that need no copy by itself.
   */
  schema_changes: setting<SchemaChanges>({ default: 'plan' }),
  dropped_columns: setting<DroppedColumns>({ default: 'drop' }),
  /** A table removed from `tables:` keeps its read-only guard (else it becomes writable with its rows). */
  keep_read_only: setting<boolean>({ default: false }),
  // A sync mirror holds up source commits, so "late" starts much sooner than for an async one.
  lag_threshold_ms: setting<number>({
    yaml: 'lag_threshold',
    default: (mode) => DEFAULT_LAG_MS[mode],
    fromYaml: durationMs,
  }),
  paused: setting<boolean>({ default: false }),
  /** Like Terraform's lifecycle.prevent_destroy: no plan may destroy the mirror while it is set. */
  prevent_destroy: setting<boolean>({ default: false }),
  /** mode sync: how many of the source cluster's sync mirrors must confirm a commit (ANY k (...)). */
  sync_quorum: setting<number>({ default: 1 }),
  /**
   * mode sync: what happens while the mirror is down. `block`: commits wait (Postgres's semantics, RPO 0);
   * `{degrade_after}`: after that long, a running `mirrors run` drops it from synchronous_standby_names.
   */
  on_sync_loss: setting<SyncLossPolicy>({ default: 'block', fromYaml: syncLossPolicy }),
};

export type SyncLossPolicy = 'block' | { degrade_after_ms: number };

function syncLossPolicy(value: unknown): SyncLossPolicy {
  if (value === 'block') return 'block';
  return { degrade_after_ms: durationMs((value as { degrade_after: string }).degrade_after) };
}

type ValueOf<S> = S extends SettingSpec<infer T> ? T : never;

/** Every per-mirror setting that `defaults:` may also set. Field names as in YAML, snake_case. */
export type MirrorSettings = { [K in keyof typeof SETTINGS]: ValueOf<(typeof SETTINGS)[K]> };
export type SettingKey = keyof MirrorSettings;

export interface SettingRow {
  key: SettingKey;
  yaml: string;
  default: unknown;
  fromYaml?: (value: unknown) => unknown;
}

export const SETTING_TABLE: readonly SettingRow[] = Object.entries(SETTINGS).map(([key, spec]) => ({
  key: key as SettingKey,
  yaml: spec.yaml ?? key,
  default: spec.default,
  ...(spec.fromYaml ? { fromYaml: spec.fromYaml } : {}),
}));

/** The settings a mirror records in the catalog, in table order. */
export const SETTING_KEYS: readonly SettingKey[] = SETTING_TABLE.map((r) => r.key);

/** The keys the settings have in YAML (under `defaults:` and in a mirror). */
export const SETTING_YAML_KEYS: readonly string[] = SETTING_TABLE.map((r) => r.yaml);

/** A setting's built-in default for a mirror of the given mode. */
export function builtinDefault(row: SettingRow, mode: MirrorMode): unknown {
  return typeof row.default === 'function' ? (row.default as (m: MirrorMode) => unknown)(mode) : row.default;
}

/** Every setting at its built-in default, for a mirror of the given mode. */
export function builtinSettings(mode: MirrorMode = 'async'): MirrorSettings {
  return Object.fromEntries(
    SETTING_TABLE.map((r) => [r.key, r.key === 'mode' ? mode : builtinDefault(r, mode)]),
  ) as MirrorSettings;
}

/**
 * A mirror's settings from its own YAML map and the `defaults:` map (both validated): its own value, else
 * the default's, else the built-in one. Mode is resolved first because other defaults depend on it.
 */
export function resolveSettings(own: Record<string, unknown>, defaults: Record<string, unknown>): MirrorSettings {
  const given = (yaml: string): unknown => own[yaml] ?? defaults[yaml];
  const mode = (given('mode') ?? SETTINGS.mode.default) as MirrorMode;
  const out: Record<string, unknown> = {};
  for (const row of SETTING_TABLE) {
    const value = given(row.yaml);
    out[row.key] = value === undefined ? builtinDefault(row, mode) : row.fromYaml ? row.fromYaml(value) : value;
  }
  return out as MirrorSettings;
}

function durationMs(value: unknown): number {
  const r = parseDuration(String(value));
  if (!r.ok) throw new Error('internal: lag_threshold passed validation but does not parse');
  return r.ms;
}
