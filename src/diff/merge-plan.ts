/**
 * What a resync with `resync_strategy: merge` needs and promises (worker/merge.ts does it): a key that is unique
 * on both peers, by which the worker walks the source in order and upserts into the destination. Pure.
 */
import type { LiveTable } from '../inspect/types.js';

/** Rows the worker reads from the source per chunk; each chunk commits on the destination on its own. */
export const MERGE_CHUNK_ROWS = 2_000;

/**
 * The destination's primary key, when the source holds the same columns unique (its primary key or replica
 * identity index): chunks are read in that order on the source and rows upserted on it on the destination.
 * null: no such key (the plan refuses a merge, MR138).
 */
export function mergeKey(source: LiveTable, dest: LiveTable | undefined): string[] | null {
  const key = dest?.primaryKey?.columns;
  if (!key?.length) return null;
  const sourceKeys = [
    source.primaryKey?.columns,
    source.replicaIdentity === 'i' ? source.replicaIdentityColumns : null,
  ];
  const same = (cols: string[] | null | undefined) =>
    !!cols && cols.length === key.length && cols.every((c) => key.includes(c));
  return sourceKeys.some(same) ? key : null;
}
