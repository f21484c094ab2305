/**
 * `mirrors verify`, the I/O: one mirror compared at one point (worker/verify-hold.ts says how the point is
 * reached), table by table, chunk by chunk (verify/sql.ts), drilled down into the chunks that differ.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import * as V from '../catalog/verify-sql.js';
import * as W from '../catalog/worker-sql.js';
import { openSource } from '../apply/copy/connections.js';
import { createSlotWithSnapshot } from '../apply/slot.js';
import { displayQualified } from '../config/names.js';
import type { Config, Mirror } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { keyedColumns } from '../db/keyed.js';
import { quoteQualified } from '../db/quote.js';
import { MirrorsError } from '../errors.js';
import { tableAddress } from '../plan/address.js';
import { leaseHeldSql } from '../worker/lease-key.js';
import { TEXT_IO_OPTIONS } from '../worker/stream.js';
import {
  HASH_PROBE_SQL,
  type HashedTable,
  type KeyCondition,
  type KeyText,
  type KeyValues,
  type RowDiff,
  type RowHash,
  type RowHashFn,
  diffRows,
  keyRowsSql,
  rangeDigestSql,
  rangeRowsSql,
  sampleStartsSql,
  sampleChunks,
  samplePercent,
  settle,
  showKey,
  sourceChunkSql,
} from './sql.js';

export interface VerifyOptions {
  /** Destination table addresses (mirror.M.table.S.T) to compare; empty: every table. */
  tables: string[];
  /** The fraction of each table's rows to compare (1: all of them). */
  sample: number;
  seed: number;
  chunkRows: number;
  /** How long to wait for the worker and for the source's snapshot. */
  timeoutMs: number;
  /** Keys of each kind named per table (all are counted). */
  keysShown: number;
  progress?(msg: string): void;
}

export const VERIFY_DEFAULTS = { sample: 1, seed: 0, chunkRows: 10_000, timeoutMs: 30_000, keysShown: 10 };
/** Differing chunks drilled into per table; beyond them the table is reported as differing, keys unknown. */
const MAX_DRILLED_CHUNKS = 100;

export interface KeyList {
  count: number;
  /** The first keys, as `id 17`. */
  keys: string[];
}

export interface PartitionCount {
  partition: string;
  source: number;
  destination: number;
}

export interface TableResult {
  address: string;
  source: string;
  destination: string;
  outcome: 'equal' | 'different' | 'skipped';
  /** Why a table was not compared. */
  reason?: string;
  rows: { source: number; destination: number };
  chunks: { compared: number; differing: number; drilled: number };
  missing: KeyList;
  extra: KeyList;
  changed: KeyList;
  /** Partitioned tables compared in full: each leaf's rows on the source and in its bound on the destination. */
  partitions?: PartitionCount[];
}

export interface MirrorResult {
  mirror: string;
  outcome: 'equal' | 'different';
  run: string;
  /** The source snapshot's position, and the destination's (the worker's, where it held). */
  sourceLsn: string;
  destinationLsn: string;
  /** How long the worker applied nothing: while the source's snapshot was taken, and at the point. */
  armMs: number | null;
  holdMs: number | null;
  sample: number;
  seconds: number;
  tables: TableResult[];
}

/** Milliseconds to a tenth, for the report. */
const tenths = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : Math.round(ms * 10) / 10);
const poll = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function verifyMirror(config: Config, m: Mirror, o: VerifyOptions): Promise<MirrorResult> {
  const t0 = performance.now();
  const say = (msg: string) => o.progress?.(`${((performance.now() - t0) / 1000).toFixed(2)} s ${msg}`);
  const destPeer = config.peers[m.destination];
  const sourcePeer = config.peers[m.source];
  const dst = await connectPeer(destPeer, { applicationName: `mirrors verify ${m.name}`, options: TEXT_IO_OPTIONS });
  let id: string | null = null;
  const opened: pg.Client[] = [];
  try {
    const state = await W.loadMirrorState(dst, m.name).catch((err) => {
      if ((err as { code?: string }).code === '42P01') return null; // no catalog yet
      throw err;
    });
    refuseUnverifiable(m, state);
    // No worker: say so now rather than wait for one to answer.
    if (!(await dst.query(`SELECT ${leaseHeldSql('$1::text')} AS held`, [m.name])).rows[0].held)
      throw new MirrorsError('VERIFY_FAILED', `cannot verify ${m.name}: no worker streams it`, {
        hint: 'no `mirrors run` holds its lease: start one, wait until `mirrors status` says Following, then verify',
      });
    const tables = selectTables(m, state!, o.tables);
    // Opened before the worker holds, so that no connection is made while it waits.
    const dsnap = await connectPeer(destPeer, {
      applicationName: `mirrors verify ${m.name}`,
      options: TEXT_IO_OPTIONS,
    });
    opened.push(dsnap);
    const nudger = await connectPeer(sourcePeer, { applicationName: `mirrors verify ${m.name}` });
    opened.push(nudger);
    id = await V.requestVerify(dst, m.name, o.sample);
    say(`waiting for the worker of ${m.name} to hold at a transaction boundary`);
    await waitFor(dst, id, 'armed', o.timeoutMs, 20, () => workerSilent(m));

    // The source's snapshot, taken while the worker applies nothing (verify-hold.ts says why).
    const slot = `mirrors_verify_${randomBytes(6).toString('hex')}`;
    const snap = await withDeadline(
      createSlotWithSnapshot(sourcePeer, slot, { temporary: true }),
      o.timeoutMs,
      () =>
        new MirrorsError(
          'VERIFY_FAILED',
          `could not take a consistent snapshot of ${m.source} within ${o.timeoutMs / 1000} s`,
          {
            hint: 'a long transaction on the source keeps it waiting (see pg_stat_activity on the source); retry once it ends',
          },
        ),
    );
    say(`source snapshot at ${snap.consistentLsn}`);
    let src: pg.Client;
    try {
      src = await openSource(sourcePeer, snap.snapshotName);
    } finally {
      await snap.close(); // the import keeps the snapshot; the temporary slot goes
    }
    opened.push(src);
    if (!(await V.advanceVerify(dst, id, 'armed', 'target', { target_lsn: snap.consistentLsn }))) throw workerGaveUp(m);
    // A message after the point: an idle stream reaches it at once, not at its next keepalive (PostgreSQL 14+ sends
    // messages to the worker).
    await nudger.query(`SELECT pg_logical_emit_message(false, 'mirrors.verify', $1::text)`, [id]);

    // The destination's snapshot, opened while the worker holds at the point.
    await waitFor(dst, id, 'held', o.timeoutMs, 2, () => workerSilent(m));
    await dsnap.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const held = (
      await dsnap.query('SELECT held_lsn::text AS lsn FROM mirrors.verify_runs WHERE id = $1::bigint', [id])
    ).rows[0].lsn as string;
    if (!(await V.advanceVerify(dst, id, 'held', 'released'))) throw workerGaveUp(m);
    say(`comparing ${m.name} at source ${snap.consistentLsn} / destination ${held}`);
    const hash = await rowHashFn(src, dsnap);

    const results: TableResult[] = [];
    for (const t of tables) {
      const r = t.skip ? skipped(m, t.entry, t.skip) : await compareTable(src, dsnap, m, t.entry, hash, o);
      say(`${r.address}: ${r.outcome}`);
      results.push(r);
    }
    const run = await V.readVerify(dst, id);
    const differing = results.filter((r) => r.outcome === 'different').length;
    const result: MirrorResult = {
      mirror: m.name,
      outcome: differing ? 'different' : 'equal',
      run: id,
      sourceLsn: snap.consistentLsn,
      destinationLsn: held,
      armMs: tenths(run?.armMs),
      holdMs: tenths(run?.holdMs),
      sample: o.sample,
      seconds: Math.round(performance.now() - t0) / 1000,
      tables: results,
    };
    await V.finishVerify(dst, id, {
      outcome: result.outcome,
      tablesCompared: results.filter((r) => r.outcome !== 'skipped').length,
      tablesDiffering: differing,
      rowsCompared: results.reduce((n, r) => n + r.rows.source, 0),
      result: results,
    });
    id = null;
    return result;
  } finally {
    if (id) await V.abandonVerify(dst, id).catch(() => {});
    for (const c of opened) await c.end().catch(() => {});
    await dst.end().catch(() => {});
  }
}

type TableEntry = W.MirrorState['tables'][number];

export function refuseUnverifiable(m: Mirror, state: W.MirrorState | null): asserts state is W.MirrorState {
  const no = (msg: string, hint: string) =>
    new MirrorsError('VERIFY_FAILED', `cannot verify ${m.name}: ${msg}`, { hint });
  if (!state) throw no('it is not applied on its destination', 'run `mirrors apply` first');
  if (state.promoted) throw no('it is promoted', 'a promoted mirror has no source to compare with');
  if (m.mode === 'sync')
    throw no(
      'mode: sync is not supported yet',
      'holding a synchronous mirror would hold the source’s commits; compare it during a quiet moment with `mode: async`',
    );
  if (state.paused)
    throw no(
      'it is paused',
      'verify needs the worker to reach one point of the stream; set `paused: false` and apply, then verify',
    );
  if (state.phase !== 'ready')
    throw no(`its snapshot is not finished (phase ${state.phase})`, 'verify once `mirrors apply` finished');
}

function selectTables(m: Mirror, state: W.MirrorState, wanted: string[]): { entry: TableEntry; skip?: string }[] {
  const all = state.tables.map((entry) => ({
    entry,
    address: tableAddress(m.name, { schema: entry.destSchema, name: entry.destTable }),
  }));
  for (const a of wanted)
    if (!all.some((t) => t.address === a))
      throw new MirrorsError('USAGE', `unknown table ${a}`, {
        hint: `tables of ${m.name}: ${all.map((t) => t.address).join(', ') || '(none)'}`,
      });
  return all
    .filter((t) => !wanted.length || wanted.includes(t.address))
    .map(({ entry }) => ({
      entry,
      skip:
        entry.state !== 'ready'
          ? `being copied (state ${entry.state})`
          : entry.merge
            ? 'a merge resync is repairing it'
            : entry.schemaChangePending
              ? 'the worker stopped at a schema change of it'
              : undefined,
    }));
}

const workerSilent = (m: Mirror) =>
  new MirrorsError('VERIFY_FAILED', `the worker of ${m.name} did not answer`, {
    hint: 'verify needs `mirrors run` streaming the mirror (see `mirrors status`)',
  });
const workerGaveUp = (m: Mirror) =>
  new MirrorsError('VERIFY_FAILED', `the worker of ${m.name} stopped waiting for this run`, {
    hint: 'the run took longer than the worker holds for (a slow source snapshot?): retry',
  });

async function waitFor(
  dst: pg.Client,
  id: string,
  state: V.VerifyState,
  timeoutMs: number,
  everyMs: number,
  silent: () => Error,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const r = await V.readVerify(dst, id);
    if (r?.state === state) return;
    if (r?.state === 'abandoned') throw silent();
    if (performance.now() > until) throw silent();
    await poll(everyMs);
  }
}

async function withDeadline<T extends { close(): Promise<void> }>(
  p: Promise<T>,
  ms: number,
  timedOut: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(timedOut());
    }, ms);
  });
  // A slot made after the deadline is closed at once (and its temporary slot dropped).
  p.then((v) => {
    if (late) return v.close();
  }).catch(() => {});
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** hashtextextended where both servers compute it alike (the same byte order), else md5 (verify/sql.ts). */
async function rowHashFn(src: pg.Client, dst: pg.Client): Promise<RowHashFn> {
  const [a, b] = await Promise.all([src.query(HASH_PROBE_SQL), dst.query(HASH_PROBE_SQL)]);
  return a.rows[0].h === b.rows[0].h ? 'hashtext' : 'md5';
}

const emptyList = (): KeyList => ({ count: 0, keys: [] });

function skipped(m: Mirror, t: TableEntry, reason: string): TableResult {
  return {
    address: tableAddress(m.name, { schema: t.destSchema, name: t.destTable }),
    source: displayQualified({ schema: t.sourceSchema, name: t.sourceTable }),
    destination: displayQualified({ schema: t.destSchema, name: t.destTable }),
    outcome: 'skipped',
    reason,
    rows: { source: 0, destination: 0 },
    chunks: { compared: 0, differing: 0, drilled: 0 },
    missing: emptyList(),
    extra: emptyList(),
    changed: emptyList(),
  };
}

/** The table as both snapshots have it: the destination's columns the source sends, each side's types, the key. */
async function describe(src: pg.Client, dst: pg.Client, t: TableEntry, hash: RowHashFn): Promise<HashedTable> {
  // The destination's primary key, else its replica identity index: the worker's key too.
  const key = (
    await dst.query(
      `SELECT a.attname AS name FROM pg_index i
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = to_regclass($1::text)
          AND i.indexrelid = (SELECT x.indexrelid FROM pg_index x WHERE x.indrelid = i.indrelid AND (x.indisprimary OR x.indisreplident)
                               ORDER BY x.indisprimary DESC LIMIT 1)
        ORDER BY k.n`,
      [quoteQualified(t.destSchema, t.destTable)],
    )
  ).rows.map((x) => x.name as string);
  const { table, missing } = await keyedColumns(src, t, key);
  if (missing.length)
    throw new MirrorsError(
      'VERIFY_FAILED',
      `${t.sourceSchema}.${t.sourceTable} on the source lacks column(s) ${missing.join(', ')} of ${t.destSchema}.${t.destTable}`,
      { hint: 'run `mirrors plan`: it shows the schema drift' },
    );
  // A key column the source does not send (excluded): compared as one digest, like a table without a key.
  return { ...table, key: table.key.includes(-1) ? [] : table.key, hash };
}

async function compareTable(
  src: pg.Client,
  dst: pg.Client,
  m: Mirror,
  entry: TableEntry,
  hash: RowHashFn,
  o: VerifyOptions,
): Promise<TableResult> {
  const t = await describe(src, dst, entry, hash);
  const r = skipped(m, entry, '');
  delete r.reason;
  r.outcome = 'equal';
  const found: Record<keyof RowDiff, Set<KeyText>> = { missing: new Set(), extra: new Set(), changed: new Set() };
  let undrilled = false;

  if (!t.key.length) {
    // No key to cut ranges by: one digest of the whole table on each side.
    const [a, b] = await Promise.all([
      digestOf(src, rangeDigestSql(t, 'source', [])),
      digestOf(dst, rangeDigestSql(t, 'dest', [])),
    ]);
    r.rows = { source: a.n, destination: b.n };
    r.chunks.compared = 1;
    if (a.n !== b.n || a.digest !== b.digest) {
      r.chunks.differing = 1;
      undrilled = true;
    }
  } else {
    const source = chunks(src, t, o);
    let next = source.next();
    for (;;) {
      const step = await next;
      if (step.done) break;
      const chunk = step.value;
      // The source cuts its next chunk while the destination counts this one.
      next = source.next();
      next.catch(() => {}); // awaited next round; a failure of this one ends the comparison first
      r.chunks.compared++;
      r.rows.source += chunk.n;
      const d = await digestOf(dst, rangeDigestSql(t, 'dest', chunk.dest));
      r.rows.destination += d.n;
      if (d.n === chunk.n && d.digest === chunk.digest) continue;
      r.chunks.differing++;
      if (r.chunks.drilled >= MAX_DRILLED_CHUNKS) {
        undrilled = true;
        continue;
      }
      r.chunks.drilled++;
      const diff = await drill(src, dst, t, chunk);
      for (const kind of ['missing', 'extra', 'changed'] as const) for (const k of diff[kind]) found[kind].add(k);
    }
  }
  // A key changed in one chunk and seen unmatched in another (the sides order it differently) counts as changed.
  for (const k of found.changed) {
    found.missing.delete(k);
    found.extra.delete(k);
  }
  for (const kind of ['missing', 'extra', 'changed'] as const) {
    r[kind] = { count: found[kind].size, keys: [...found[kind]].slice(0, o.keysShown).map((k) => showKey(t, k)) };
  }
  if (o.sample >= 1 && (await isPartitioned(src, t))) r.partitions = await partitionCounts(src, dst, t);
  const partitionsDiffer = r.partitions?.some((p) => p.source !== p.destination) ?? false;
  if (undrilled || found.missing.size || found.extra.size || found.changed.size || partitionsDiffer)
    r.outcome = 'different';
  return r;
}

/** `n` of `xs`, spread evenly (the first included). */
const evenly = <T>(xs: T[], n: number): T[] => Array.from({ length: n }, (_, i) => xs[Math.floor((i * xs.length) / n)]);

interface SourceChunk {
  n: number;
  digest: string;
  /** The source's range of this chunk, and the destination's (the last chunk's is open-ended there). */
  source: KeyCondition[];
  dest: KeyCondition[];
}

async function digestOf(c: pg.Client, q: { text: string; values: unknown[] }): Promise<{ n: number; digest: string }> {
  const row = (await c.query(q.text, q.values)).rows[0];
  return { n: row.n, digest: row.digest };
}

/**
 * The source's chunks in key order. In full: every row, the last chunk open-ended on the destination (so that
 * rows past the source's last key are counted). Sampled: from start keys on pages TABLESAMPLE picks.
 */
async function* chunks(src: pg.Client, t: HashedTable, o: VerifyOptions): AsyncGenerator<SourceChunk> {
  let starts: (KeyValues | null)[] = [null];
  let sampled = false;
  if (o.sample < 1) {
    // Pages as the files hold them now; rows as ANALYZE last counted them, scaled to those pages (counted when no
    // ANALYZE ever ran: such a table is new, and small or about to be analyzed).
    const leaves = (
      await src.query(
        `SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 AS pages,
                c.relpages::float8 AS relpages, c.reltuples::float8 AS reltuples
           FROM pg_class c
          -- pg_partition_tree lists nothing for a table that is not partitioned.
          WHERE (c.oid = to_regclass($1::text) OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass($1::text))))
            AND c.relkind = 'r'`,
        [quoteQualified(t.source.schema, t.source.name)],
      )
    ).rows as { pages: number; relpages: number; reltuples: number }[];
    const size = { pages: 0, tuples: 0 };
    for (const l of leaves) {
      size.pages += l.pages;
      if (l.reltuples > 0 && l.relpages > 0) size.tuples += (l.reltuples * l.pages) / l.relpages;
      else size.tuples = Number.NaN;
    }
    if (Number.isNaN(size.tuples))
      size.tuples = Number(
        (await src.query(`SELECT count(*) AS n FROM ${quoteQualified(t.source.schema, t.source.name)}`)).rows[0].n,
      );
    const percent = samplePercent(o.sample, size.pages, size.tuples, o.chunkRows);
    if (percent < 100) {
      sampled = true;
      const q = sampleStartsSql(t, percent, o.seed);
      const picked = (await src.query(q.text, q.values)).rows.map((x) => JSON.parse(x.k) as KeyValues);
      // TABLESAMPLE SYSTEM picks more pages than asked at small percentages: as many as the sample needs, spread
      // evenly over those (still the same for the same seed). None picked (a small table): one chunk from the start.
      const wanted = sampleChunks(o.sample, size.tuples, o.chunkRows);
      if (picked.length) starts = picked.length > wanted ? evenly(picked, wanted) : picked;
    }
  }
  let last: KeyValues | null = null;
  for (const start of starts) {
    for (;;) {
      const conds: KeyCondition[] = [];
      if (start) conds.push({ op: '>=', key: start });
      if (last) conds.push({ op: '>', key: last });
      const q = sourceChunkSql(t, conds, o.chunkRows);
      const row = (await src.query(q.text, q.values)).rows[0];
      const full = row.n === o.chunkRows;
      const upper: KeyValues | null = row.last === null ? null : JSON.parse(row.last);
      // The last chunk of a full comparison is open-ended on the destination; a sampled one ends at its last key.
      const dest = !full && !sampled ? conds : upper ? [...conds, { op: '<=' as const, key: upper }] : null;
      if (dest)
        yield { n: row.n, digest: row.digest, source: upper ? [...conds, { op: '<=', key: upper }] : conds, dest };
      if (upper) last = upper;
      if (sampled || !full) break;
    }
  }
}

/** The rows of a differing chunk, compared by key, unmatched keys looked up on the other side. */
async function drill(src: pg.Client, dst: pg.Client, t: HashedTable, chunk: SourceChunk): Promise<RowDiff> {
  const rows = async (c: pg.Client, q: { text: string; values: unknown[] }) =>
    (await c.query(q.text, q.values)).rows as RowHash[];
  const [a, b] = [
    await rows(src, rangeRowsSql(t, 'source', chunk.source)),
    await rows(dst, rangeRowsSql(t, 'dest', chunk.dest)),
  ];
  const diff = diffRows(a, b);
  const keys = (ks: KeyText[]) => ks.map((k) => JSON.parse(k) as KeyValues);
  return settle(
    diff,
    { source: new Map(a.map((x) => [x.k, x.h])), dest: new Map(b.map((x) => [x.k, x.h])) },
    {
      missingOnDest: diff.missing.length ? await rows(dst, keyRowsSql(t, 'dest', keys(diff.missing))) : [],
      extraOnSource: diff.extra.length ? await rows(src, keyRowsSql(t, 'source', keys(diff.extra))) : [],
    },
  );
}

async function isPartitioned(src: pg.Client, t: HashedTable): Promise<boolean> {
  const r = await src.query(`SELECT relkind = 'p' AS p FROM pg_class WHERE oid = to_regclass($1::text)`, [
    quoteQualified(t.source.schema, t.source.name),
  ]);
  return r.rows[0]?.p === true;
}

/**
 * Each leaf's rows on the source, and the destination's rows inside that leaf's bound (hash partitions left out:
 * their bound names the source's own table).
 */
async function partitionCounts(src: pg.Client, dst: pg.Client, t: HashedTable): Promise<PartitionCount[]> {
  const leaves = (
    await src.query(
      `SELECT p.relid::regclass::text AS partition, pg_get_partition_constraintdef(p.relid) AS bound
         FROM pg_partition_tree(to_regclass($1::text)) p WHERE p.isleaf`,
      [quoteQualified(t.source.schema, t.source.name)],
    )
  ).rows as { partition: string; bound: string | null }[];
  const out: PartitionCount[] = [];
  for (const leaf of leaves) {
    if (leaf.bound?.includes('satisfies_hash_partition')) continue;
    const n = Number((await src.query(`SELECT count(*) AS n FROM ${leaf.partition}`)).rows[0].n);
    const d = Number(
      (
        await dst.query(
          `SELECT count(*) AS n FROM ${quoteQualified(t.dest.schema, t.dest.name)} WHERE ${leaf.bound ?? 'true'}`,
        )
      ).rows[0].n,
    );
    out.push({ partition: leaf.partition, source: n, destination: d });
  }
  return out;
}
