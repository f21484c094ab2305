/**
 * The snapshot copier (DESIGN.md "The data path" 1 and 2): copies tables from the source, as of one exported
 * snapshot, into the destination. Each table is split into parts (partition-key ranges, ctid block ranges,
 * leaf partitions); each part is a source `COPY ... TO STDOUT` piped into a destination `COPY ... FROM STDIN`,
 * streamed with backpressure, never held whole in memory: the source's CopyData messages are forwarded
 * unopened (see "Streaming"), in COPY's binary format when both sides have the same built-in types.
 *
 * Tables in flight share the workers out: a table runs at most ceil(maxWorkers / tables in flight) parts
 * at once, and its share grows as the other tables finish.
 *
 * Owns: its connections — at most `maxWorkers` per peer, opened lazily by the worker that first needs one,
 * reused by that worker's later parts, and all closed before copyTables settles (on success, failure or abort).
 * Must not: write the mirrors catalog (the caller does, through the hooks), print, or put user data into SQL
 * text (bounds are numbers we computed or literals Postgres quoted itself).
 *
 * A source worker connection runs one REPEATABLE READ transaction on the exported snapshot for its whole
 * life: every part it copies and every planning query sees the same snapshot, and a part costs no extra
 * round trips. A destination COPY runs in autocommit, so each part is its own transaction.
 */
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../db/quote.js';
import { MirrorsError } from '../errors.js';
import type { TableSpec } from '../plan/types.js';

export interface CopyProgress {
  table: TableSpec;
  rowsDone: number;
  /** Bytes of COPY data (text or binary format) streamed so far. */
  bytesDone: number;
  /**
   * Estimate: the source's table size (heap + TOAST) at planning time, never below bytesDone. The last
   * report of a table (after its last part) has bytesTotal = bytesDone.
   */
  bytesTotal: number;
  partsDone: number;
  partsTotal: number;
}

export interface CopyOptions {
  source: Peer;
  destination: Peer;
  /** exported snapshot name from CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export'); every source read uses it */
  snapshotName: string;
  tables: TableSpec[];
  /** snapshot_num_tables_in_parallel */
  tablesInParallel: number;
  /** snapshot_max_parallel_workers: total concurrent COPY streams across all tables */
  maxWorkers: number;
  /** snapshot_num_rows_per_partition */
  rowsPerPartition: number;
  /** Awaited before the destination table is truncated and copied; partsTotal is the planned number of parts. */
  onTableStart?(t: TableSpec, partsTotal: number): Promise<void> | void;
  /** At most ~4 times a second per table, plus at the end of each part. */
  onProgress?(p: CopyProgress): void;
  /**
   * Awaited before the table counts as done. rows: from the COPY command tags; bytes: COPY data streamed.
   * onTableStart and onTableDone calls never overlap, whatever tablesInParallel.
   */
  onTableDone?(t: TableSpec, rows: number, bytes: number): Promise<void>;
  signal?: AbortSignal;
}

export const SNAPSHOT_APPLICATION_NAME = 'mirrors snapshot';
const SNAPSHOT_NAME = /^[0-9A-F]+-[0-9A-F]+-[0-9]+$/i;
const PROGRESS_EVERY_MS = 250;
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8']);
/**
 * Bytes queued on the destination socket before the source socket is paused (until they are all sent).
 * Larger than Node's 16 KiB default: fewer pause/resume cycles.
 */
const STREAM_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Settings that make the text COPY format mean the same thing on both sides whatever the servers' or roles'
 * defaults: unambiguous dates, exact floats, hex bytea, money and XML parsed as printed, no timeouts cutting
 * a long COPY. Sent in the startup packet: no extra round trip.
 */
const SESSION_SETTINGS = [
  'DateStyle=ISO',
  'IntervalStyle=postgres',
  'TimeZone=UTC',
  'extra_float_digits=3',
  'bytea_output=hex',
  'lc_monetary=C',
  'xmloption=content',
  'statement_timeout=0',
  'idle_in_transaction_session_timeout=0',
];
const SOURCE_OPTIONS = SESSION_SETTINGS.map((s) => `-c ${s}`).join(' ');
/** Like Postgres's own apply worker: user triggers (and the read-only guard) do not fire, FKs are not checked. */
const DESTINATION_OPTIONS = `${SOURCE_OPTIONS} -c session_replication_role=replica`;

export async function copyTables(opts: CopyOptions): Promise<void> {
  checkOptions(opts);
  opts.signal?.throwIfAborted();
  const run = new CopyRun(opts);
  await run.run();
}

function checkOptions(opts: CopyOptions): void {
  if (!SNAPSHOT_NAME.test(opts.snapshotName)) {
    throw new MirrorsError('INTERNAL', `not an exported snapshot name: ${JSON.stringify(opts.snapshotName)}`);
  }
  for (const k of ['tablesInParallel', 'maxWorkers', 'rowsPerPartition'] as const) {
    if (!Number.isInteger(opts[k]) || opts[k] < 1) throw new MirrorsError('INTERNAL', `copyTables: ${k} must be a positive integer, got ${opts[k]}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workers: a fixed set of slots, each with its own (lazily opened) source and destination connection.

interface Worker {
  src?: Promise<pg.Client>;
  dst?: Promise<pg.Client>;
}

class WorkerPool {
  private readonly all: Worker[];
  private readonly free: Worker[];
  private readonly waiters: { resolve(w: Worker): void; reject(e: unknown): void }[] = [];

  constructor(size: number, private readonly signal: AbortSignal) {
    this.all = Array.from({ length: size }, () => ({}));
    this.free = [...this.all].reverse();
    signal.addEventListener('abort', () => {
      for (const w of this.waiters.splice(0)) w.reject(signal.reason);
    });
  }

  /** FIFO: a lane that finished a part queues behind the others, so tables take turns. */
  acquire(): Promise<Worker> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    const w = this.free.pop();
    if (w) return Promise.resolve(w);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(w: Worker): void {
    const next = this.waiters.shift();
    if (next) next.resolve(w);
    else this.free.push(w);
  }

  /**
   * Ends every connection. With a query in flight pg destroys the socket (the server rolls back and, for a
   * source COPY, stops on the broken pipe); an idle one gets a polite Terminate.
   */
  closeAll(): Promise<void> {
    for (const w of this.all) {
      for (const p of [w.src, w.dst]) if (p) this.closing.push(p.then((c) => c.end()).catch(() => undefined));
      w.src = undefined;
      w.dst = undefined;
    }
    // Every call waits for all ends so far, including those started by an earlier call still in progress.
    return Promise.all(this.closing).then(() => undefined);
  }

  private readonly closing: Promise<unknown>[] = [];
}

// ---------------------------------------------------------------------------------------------------------
// Parts

interface Relation {
  schema: string;
  name: string;
  relkind: string;
}

interface Part {
  relation: Relation;
  /** null: the whole relation. */
  where: string | null;
}

interface TablePlan {
  parts: Part[];
  bytesTotal: number;
  /** The source's copied columns' types (see COLUMN_TYPES_SQL), by column name. */
  types: Map<string, ColumnType>;
}

interface ColumnType {
  oid: string;
  binary: boolean;
}

/**
 * A table's column types, and whether COPY's binary format carries each one between any two clusters: a
 * built-in base, range or multirange type (OIDs below 10000 are fixed across clusters and versions) with
 * binary I/O, whose array elements qualify too, and that is not a reg* type (those are sent as OIDs, which
 * mean other objects on another cluster). Composite types and arrays of user types embed OIDs: never binary.
 */
const COLUMN_TYPES_SQL = `
SELECT a.attname AS name, t.oid::text AS oid,
       (t.oid < 10000 AND t.typtype IN ('b', 'r', 'm') AND t.typsend::oid <> 0 AND t.typreceive::oid <> 0 AND t.typname !~ '^_?reg'
        AND (e.oid IS NULL OR (e.oid < 10000 AND e.typtype IN ('b', 'r', 'm') AND e.typsend::oid <> 0 AND e.typreceive::oid <> 0))) AS binary
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
WHERE a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1::text AND c.relname = $2::text)
  AND a.attnum > 0 AND NOT a.attisdropped`;

async function columnTypes(c: pg.Client, schema: string, name: string): Promise<Map<string, ColumnType>> {
  const { rows } = await c.query<ColumnType & { name: string }>(COLUMN_TYPES_SQL, [schema, name]);
  return new Map(rows.map((r) => [r.name, { oid: r.oid, binary: r.binary }]));
}

/**
 * Binary COPY when every copied column has the very same type on both sides and the type qualifies: it
 * costs both servers much less than text (no number, date or array formatting and parsing) and is exact by
 * construction. Otherwise text, whose input functions also convert between differing types.
 */
function binaryFormat(spec: TableSpec, source: Map<string, ColumnType>, destination: Map<string, ColumnType>): boolean {
  return spec.columns.every((c) => {
    const s = source.get(c.name);
    const d = destination.get(c.name);
    return s !== undefined && d !== undefined && s.binary && d.binary && s.oid === d.oid;
  });
}

interface RelationRow {
  schema: string;
  name: string;
  relkind: string;
  root_kind: string;
  pages: string;
  relpages: number;
  reltuples: number;
  width: number;
  block_size: number;
  bytes: string;
}

/**
 * The relations to read for a table — the table itself, or the leaves of a partitioned table — with what
 * sizing needs. Run in the snapshot transaction; sizes are the current ones (a table only grows past
 * rows the snapshot can see: those rows' pages cannot be truncated while the snapshot holds them).
 */
const RELATIONS_SQL = `
WITH t AS (
  SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1::text AND c.relname = $2::text
), rels AS (
  SELECT t.oid FROM t WHERE t.relkind <> 'p'
  UNION ALL
  SELECT p.relid FROM t, pg_catalog.pg_partition_tree(t.oid) p WHERE t.relkind = 'p' AND p.isleaf
)
SELECT n.nspname AS schema, c.relname AS name, c.relkind, (SELECT relkind FROM t) AS root_kind,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint ELSE 0 END::text AS pages,
       c.relpages, c.reltuples::float8 AS reltuples,
       (SELECT coalesce(sum(CASE WHEN ty.typlen > 0 THEN ty.typlen ELSE 32 END), 0)::int
          FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS width,
       current_setting('block_size')::int AS block_size,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END::text AS bytes
FROM rels JOIN pg_catalog.pg_class c ON c.oid = rels.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY n.nspname, c.relname`;

/** Rows a relation holds, as the planner would guess them from its current size. */
function rowsFromPages(r: RelationRow): number {
  const pages = Number(r.pages);
  if (r.relpages > 0 && r.reltuples >= 0) return (r.reltuples / r.relpages) * pages;
  // Never analyzed: page header 24 bytes, tuple header 24 + line pointer 4, 32 bytes per variable-width value.
  return pages * Math.max(1, Math.floor((r.block_size - 24) / (r.width + 28)));
}

function partsWanted(rows: number, rowsPerPartition: number): number {
  return Math.max(1, Math.ceil(rows / rowsPerPartition));
}

async function planTable(src: pg.Client, spec: TableSpec, rowsPerPartition: number): Promise<TablePlan> {
  const { rows } = await src.query<RelationRow>(RELATIONS_SQL, [spec.source.schema, spec.source.name]);
  if (rows.length === 0) {
    const exists = await src.query(
      `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1::text AND c.relname = $2::text`,
      [spec.source.schema, spec.source.name],
    );
    // A partitioned table without partitions holds no rows.
    if (exists.rowCount) return { parts: [], bytesTotal: 0, types: new Map() };
    throw new MirrorsError('APPLY_FAILED', `source table ${quoteQualified(spec.source.schema, spec.source.name)} does not exist`, {
      hint: 'run `mirrors plan` again: the source changed since the plan was made',
    });
  }
  const bytesTotal = rows.reduce((n, r) => n + Number(r.bytes), 0);
  const types = await columnTypes(src, spec.source.schema, spec.source.name);
  if (rows[0].root_kind === 'p') {
    const parts = rows.flatMap((r) => ctidParts(r, partsWanted(rowsFromPages(r), rowsPerPartition)));
    return { parts, bytesTotal, types };
  }
  const r = rows[0];
  const specRows = Number(spec.estimated_rows);
  // An estimate taken while the table was empty (relpages 0) says nothing about what was loaded since.
  const estimate = specRows >= 0 && (r.relpages > 0 || Number(r.pages) === 0) ? specRows : rowsFromPages(r);
  const wanted = partsWanted(estimate, rowsPerPartition);
  const relation: Relation = { schema: r.schema, name: r.name, relkind: r.relkind };
  if (wanted === 1) return { parts: [{ relation, where: null }], bytesTotal, types };
  if (spec.partition_key !== null) return { parts: await keyParts(src, spec, relation, wanted), bytesTotal, types };
  return { parts: ctidParts(r, wanted), bytesTotal, types };
}

/** Block ranges: `ctid >= '(a,0)' AND ctid < '(b,0)'` run as TID Range Scans (Postgres 14+). */
function ctidParts(r: RelationRow, wanted: number): Part[] {
  const relation: Relation = { schema: r.schema, name: r.name, relkind: r.relkind };
  const pages = Number(r.pages);
  const n = Math.min(wanted, pages);
  if (!['r', 'm'].includes(r.relkind) || n <= 1) return [{ relation, where: null }];
  const per = Math.ceil(pages / n);
  const bounds: number[] = [];
  for (let b = per; b < pages; b += per) bounds.push(b);
  const tid = (block: number) => `'(${block},0)'::pg_catalog.tid`;
  // The first range is open below and the last open above: rows inserted after planning land past the end.
  return ranges(bounds).map(([lo, hi]) => ({
    relation,
    where: [lo === null ? null : `ctid >= ${tid(lo)}`, hi === null ? null : `ctid < ${tid(hi)}`].filter(Boolean).join(' AND '),
  }));
}

/** [null, b1], [b1, b2], ..., [bn, null] */
function ranges<T>(bounds: T[]): [T | null, T | null][] {
  const out: [T | null, T | null][] = [];
  for (let i = 0; i <= bounds.length; i++) out.push([i === 0 ? null : bounds[i - 1], i === bounds.length ? null : bounds[i]]);
  return out;
}

async function keyParts(src: pg.Client, spec: TableSpec, relation: Relation, wanted: number): Promise<Part[]> {
  const keyName = spec.partition_key!;
  const column = spec.columns.find((c) => c.name === keyName);
  if (!column) {
    throw new MirrorsError('APPLY_FAILED', `partition_key ${quoteIdent(keyName)} is not a copied column of ${quoteQualified(spec.source.schema, spec.source.name)}`, {
      hint: 'choose a column that exists on the source and is not excluded',
    });
  }
  const key = quoteIdent(keyName);
  const from = `ONLY ${quoteQualified(relation.schema, relation.name)}`;
  const whole: Part[] = [{ relation, where: null }];
  let conditions: string[];
  if (INTEGER_TYPES.has(column.type)) {
    const { rows } = await src.query<{ lo: string | null; hi: string | null }>(`SELECT min(${key})::text AS lo, max(${key})::text AS hi FROM ${from}`);
    const { lo, hi } = rows[0];
    if (lo === null || hi === null) return whole;
    conditions = integerRanges(BigInt(lo), BigInt(hi), wanted).map(([a, b]) =>
      [a === null ? null : `${key} >= ${a}`, b === null ? null : `${key} < ${b}`].filter(Boolean).join(' AND '),
    );
  } else {
    // One sorted scan; each bucket's last value is an upper bound. Postgres quotes the values itself, and an
    // untyped literal compared with the column takes the column's type (and collation).
    const { rows } = await src.query<{ bound: string }>(
      `SELECT pg_catalog.quote_literal(k) AS bound
         FROM (SELECT k, b, lead(b) OVER (ORDER BY k) AS next_b
                 FROM (SELECT ${key} AS k, ntile($1::int) OVER (ORDER BY ${key}) AS b FROM ${from} WHERE ${key} IS NOT NULL) s) s
        WHERE next_b <> b
        ORDER BY b`,
      [wanted],
    );
    const bounds = [...new Set(rows.map((r) => r.bound))];
    if (bounds.length === 0) return whole;
    conditions = ranges(bounds).map(([a, b]) =>
      [a === null ? null : `${key} > ${a}`, b === null ? null : `${key} <= ${b}`].filter(Boolean).join(' AND '),
    );
  }
  // Ranges never match NULL: a nullable key gets a part of its own.
  if (!column.not_null) conditions.push(`${key} IS NULL`);
  return conditions.map((where) => ({ relation, where }));
}

/** Equal ranges over [lo, hi]: [null, b1), [b1, b2), ..., [bn, null). Digits only: safe in SQL text. */
export function integerRanges(lo: bigint, hi: bigint, wanted: number): [string | null, string | null][] {
  const span = hi - lo + 1n;
  const n = BigInt(wanted) < span ? BigInt(wanted) : span;
  const step = (span + n - 1n) / n;
  const bounds: string[] = [];
  for (let b = lo + step; b <= hi; b += step) bounds.push(b.toString());
  return ranges(bounds);
}

function columnList(spec: TableSpec): string {
  return spec.columns.map((c) => quoteIdent(c.name)).join(', ');
}

function sourceSql(spec: TableSpec, part: Part, binary: boolean): string {
  const cols = columnList(spec);
  const rel = quoteQualified(part.relation.schema, part.relation.name);
  const format = binary ? ' (FORMAT binary)' : '';
  // Plain COPY of a table is cheaper than COPY (SELECT ...); it reads only that table, like ONLY.
  if (part.where === null && part.relation.relkind === 'r') return `COPY ${rel} (${cols}) TO STDOUT${format}`;
  const where = part.where === null ? '' : ` WHERE ${part.where}`;
  return `COPY (SELECT ${cols} FROM ONLY ${rel}${where}) TO STDOUT${format}`;
}

function destinationSql(spec: TableSpec, binary: boolean): string {
  return `COPY ${quoteQualified(spec.destination.schema, spec.destination.name)} (${columnList(spec)}) FROM STDIN${binary ? ' (FORMAT binary)' : ''}`;
}

// ---------------------------------------------------------------------------------------------------------
// Streaming: the source's CopyData messages go to the destination as they are.
//
// A text COPY OUT sends one CopyData message per row, and a COPY IN accepts CopyData messages of any split:
// so the bytes the source sends, message headers included, are already what the destination wants. Both
// sides are pg "submittables" (what pg-copy-streams does): pg runs each when the connection's turn comes
// and hands it the server's replies, except that the source's socket is read directly between the query
// and its CopyDone. Only message headers are looked at; rows are never cut out of the socket's chunks.

const MSG_COPY_DATA = 0x64; // 'd'
const MSG_COPY_DONE = 0x63; // 'c'
/** Messages allowed amid a COPY OUT that a copy can do without: CopyOutResponse, Notice, ParameterStatus, Notification. */
const MSG_SKIPPED = new Set([0x48, 0x4e, 0x53, 0x41]);
const COPY_DONE = Buffer.from([MSG_COPY_DONE, 0, 0, 0, 4]);
/** Binary COPY's framing: signature, flags and extension length; the field count -1. Not counted as data. */
const BINARY_HEADER = 19;
const BINARY_TRAILER = 2;

type Listener = (chunk: Buffer) => void;

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Settled promises nobody awaits any more (the other side failed first) must not count as unhandled.
  promise.catch(ignore);
  return { promise, resolve, reject };
}

function commandRows(msg: { text?: string } | undefined): number {
  const m = /^COPY (\d+)/.exec(msg?.text ?? '');
  return m ? Number(m[1]) : 0;
}

/** The destination `COPY ... FROM STDIN`: `ready` gives the socket once the server takes CopyData. */
class CopyIn implements pg.Submittable {
  private readonly readyD = deferred<NodeJS.WritableStream & { writableLength: number }>();
  private readonly doneD = deferred<number>();
  readonly ready = this.readyD.promise;
  /** The command tag's row count, once the server has committed. */
  readonly done = this.doneD.promise;
  private connection: pg.Connection | undefined;
  private rowCount = 0;

  constructor(private readonly text: string) {}

  submit(connection: pg.Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  /** After the last CopyData: the server commits and answers CommandComplete, ReadyForQuery. */
  end(): void {
    this.connection!.stream.write(COPY_DONE);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    this.readyD.resolve(connection.stream as unknown as NodeJS.WritableStream & { writableLength: number });
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = commandRows(msg);
  }

  handleReadyForQuery(): void {
    this.doneD.resolve(this.rowCount);
  }

  handleError(err: unknown): void {
    this.readyD.reject(err);
    this.doneD.reject(err);
  }
}

/**
 * The source `COPY ... TO STDOUT`. From submit() to the CopyDone it owns the socket's 'data' events (pg's own
 * listener is set aside), forwards whole CopyData messages to the destination socket once forwardTo() gives
 * it, and hands pg back the socket and every byte from the first message it does not handle: CopyDone's
 * followers (CommandComplete, ReadyForQuery) or an ErrorResponse, which pg turns into handleError.
 */
class CopyOut implements pg.Submittable {
  private readonly doneD = deferred<void>();
  /** Settles at the source's ReadyForQuery, or its first error. */
  readonly done = this.doneD.promise;
  /** Rows (CopyData messages but binary COPY's framing) and bytes (COPY data: no message headers, no framing) forwarded so far. */
  rows = 0;
  bytes = 0;
  private socket: NodeJS.ReadableStream & NodeJS.EventEmitter | undefined;
  private pgListener: Listener | undefined;
  private out: (NodeJS.WritableStream & { writableLength: number }) | undefined;
  /** Bytes of the current message still to come in later chunks, and whether they are forwarded. */
  private left = 0;
  private leftIsData = false;
  /** The start of a message whose 5-byte header was cut by the chunk's end. */
  private pending: Buffer | null = null;
  private waitingForDrain = false;
  private detached = false;
  /** Binary COPY's header is sent with the first row (or the trailer), its trailer alone: neither is a row. */
  private headerSeen = false;

  constructor(
    private readonly text: string,
    private readonly binary: boolean,
    private readonly highWaterMark: number,
    private readonly onChunk: (bytes: number, rows: number) => void,
  ) {}

  submit(connection: pg.Connection): void {
    const socket = connection.stream;
    const listeners = socket.listeners('data') as Listener[];
    if (listeners.length !== 1) throw new MirrorsError('INTERNAL', `copy: expected pg's one data listener on the source socket, found ${listeners.length}`);
    this.socket = socket;
    this.pgListener = listeners[0];
    socket.removeListener('data', this.pgListener);
    socket.on('data', this.onData);
    // Until the destination is ready for CopyData: the server waits on the full socket.
    socket.pause();
    connection.query(this.text);
  }

  forwardTo(out: NodeJS.WritableStream & { writableLength: number }): void {
    this.out = out;
    if (!this.detached) this.socket!.resume();
  }

  private readonly onDrain = (): void => {
    this.waitingForDrain = false;
    if (!this.detached) this.socket!.resume();
  };

  private readonly onData = (data: Buffer): void => {
    let chunk = data;
    if (this.pending) {
      chunk = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const out = this.out!;
    const len = chunk.length;
    const rows0 = this.rows;
    const bytes0 = this.bytes;
    let i = 0;
    /** Start of the run of CopyData bytes to forward, -1: none. */
    let from = -1;
    if (this.left > 0) {
      i = Math.min(this.left, len);
      this.left -= i;
      if (this.leftIsData) from = 0;
    }
    while (i < len) {
      if (len - i < 5) {
        this.pending = chunk.subarray(i);
        break;
      }
      const code = chunk[i];
      const end = i + 1 + chunk.readUInt32BE(i + 1);
      if (code === MSG_COPY_DATA) {
        if (from < 0) from = i;
        const payload = end - i - 5;
        if (!this.binary) {
          this.rows++;
          this.bytes += payload;
        } else if (!this.headerSeen) {
          // The header, with the first row or else the trailer.
          this.headerSeen = true;
          this.bytes += payload === BINARY_HEADER + BINARY_TRAILER ? 0 : payload - BINARY_HEADER;
        } else if (payload !== BINARY_TRAILER) {
          // A row is at least its field count and one field's length: only the trailer has 2 bytes.
          this.rows++;
          this.bytes += payload;
        }
      } else {
        if (from >= 0) out.write(chunk.subarray(from, i));
        from = -1;
        if (!MSG_SKIPPED.has(code)) {
          this.detach(code === MSG_COPY_DONE ? chunk.subarray(end) : chunk.subarray(i));
          this.progress(rows0, bytes0);
          return;
        }
      }
      if (end > len) {
        this.left = end - len;
        this.leftIsData = code === MSG_COPY_DATA;
        i = len;
      } else i = end;
    }
    if (from >= 0) out.write(chunk.subarray(from, this.pending ? len - this.pending.length : len));
    this.progress(rows0, bytes0);
    if (out.writableLength >= this.highWaterMark && !this.waitingForDrain && !this.detached) {
      // write() has returned false: 'drain' comes when the destination socket has sent it all.
      this.waitingForDrain = true;
      this.socket!.pause();
      out.once('drain', this.onDrain);
    }
  };

  private progress(rows0: number, bytes0: number): void {
    if (this.rows === rows0 && this.bytes === bytes0) return;
    try {
      this.onChunk(this.bytes - bytes0, this.rows - rows0);
    } catch (err) {
      this.doneD.reject(err);
    }
  }

  private detach(rest: Buffer): void {
    const socket = this.socket!;
    this.detached = true;
    socket.removeListener('data', this.onData);
    if (this.waitingForDrain) this.out!.removeListener('drain', this.onDrain);
    socket.on('data', this.pgListener!);
    if (rest.length > 0) this.pgListener!(rest);
    socket.resume();
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.doneD.resolve();
  }

  handleError(err: unknown): void {
    this.doneD.reject(err);
  }
}

const ignore = () => {};

// ---------------------------------------------------------------------------------------------------------
// The run

interface TableState {
  spec: TableSpec;
  /** COPY's binary format rather than text (see binaryFormat). */
  binary: boolean;
  partsTotal: number;
  partsDone: number;
  rows: number;
  bytes: number;
  bytesTotal: number;
  lastReport: number;
}

class CopyRun {
  private readonly abort = new AbortController();
  private readonly pool: WorkerPool;
  private failure: { error: unknown } | undefined;

  constructor(private readonly opts: CopyOptions) {
    this.pool = new WorkerPool(opts.maxWorkers, this.abort.signal);
    // Closing every connection is what stops streams stuck on backpressure or on a slow server.
    this.abort.signal.addEventListener('abort', () => {
      void this.pool.closeAll();
      this.shareChanged();
    });
  }

  /** Tables between their planning and their onTableDone. */
  private tablesInFlight = 0;
  private shareWaiters: (() => void)[] = [];

  /**
   * How many parts of one table may be copied at once: the workers shared out between the tables in flight.
   * Parts of one table copied side by side contend for its heap's extension lock and split its indexes'
   * pages mid-range; parts of different tables do not. A table's share grows as the others finish.
   */
  private share(): number {
    return Math.max(1, Math.ceil(this.opts.maxWorkers / Math.max(1, this.tablesInFlight)));
  }

  private shareChanged(): void {
    for (const wake of this.shareWaiters.splice(0)) wake();
  }

  async run(): Promise<void> {
    const onAbort = () => this.fail(this.opts.signal!.reason);
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const queue = [...this.opts.tables];
      const lanes = Math.min(this.opts.tablesInParallel, queue.length);
      await settleAll(
        Array.from({ length: lanes }, async () => {
          for (let spec = queue.shift(); spec && !this.abort.signal.aborted; spec = queue.shift()) {
            this.tablesInFlight++;
            try {
              await this.guard(() => this.copyTable(spec!));
            } finally {
              this.tablesInFlight--;
              this.shareChanged();
            }
          }
        }),
      ).catch((err) => this.fail(err));
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
      await this.pool.closeAll();
    }
    if (this.failure) throw this.failure.error;
  }

  /**
   * onTableStart and onTableDone run one at a time, whichever lanes call them: the caller's hooks may write
   * through one connection (pg would queue overlapping queries, with a deprecation warning on stderr).
   */
  private hook(fn: () => Promise<void> | void): Promise<void> {
    const run = this.hooks.then(fn);
    this.hooks = run.catch(ignore);
    return run;
  }

  private hooks: Promise<void> = Promise.resolve();

  /** The first failure wins and stops everything; later ones are its consequences. */
  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.abort.abort(error);
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  private async withWorker<T>(fn: (w: Worker) => Promise<T>): Promise<T> {
    const w = await this.guard(() => this.pool.acquire());
    try {
      return await fn(w);
    } catch (err) {
      // Before the worker goes back to the pool: nobody may start on connections that are about to close.
      this.fail(err);
      throw err;
    } finally {
      this.pool.release(w);
    }
  }

  private source(w: Worker): Promise<pg.Client> {
    this.abort.signal.throwIfAborted();
    w.src ??= (async () => {
      const c = await connectPeer(this.opts.source, { applicationName: SNAPSHOT_APPLICATION_NAME, options: SOURCE_OPTIONS });
      try {
        await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ${quoteLiteral(this.opts.snapshotName)}`);
      } catch (err) {
        // e.g. 22023 invalid snapshot identifier: the exporting connection is gone.
        await c.end().catch(() => undefined);
        throw err;
      }
      return c;
    })();
    return w.src;
  }

  private destination(w: Worker): Promise<pg.Client> {
    this.abort.signal.throwIfAborted();
    w.dst ??= connectPeer(this.opts.destination, { applicationName: SNAPSHOT_APPLICATION_NAME, options: DESTINATION_OPTIONS });
    return w.dst;
  }

  private async copyTable(spec: TableSpec): Promise<void> {
    const plan = await this.withWorker(async (w) => planTable(await this.source(w), spec, this.opts.rowsPerPartition));
    await this.hook(() => this.opts.onTableStart?.(spec, plan.parts.length));
    this.abort.signal.throwIfAborted();
    // A previous, interrupted attempt may have left rows.
    const binary = await this.withWorker(async (w) => {
      const dst = await this.destination(w);
      await dst.query(`TRUNCATE ${quoteQualified(spec.destination.schema, spec.destination.name)}`);
      return binaryFormat(spec, plan.types, await columnTypes(dst, spec.destination.schema, spec.destination.name));
    });
    const t: TableState = { spec, binary, partsTotal: plan.parts.length, partsDone: 0, rows: 0, bytes: 0, bytesTotal: plan.bytesTotal, lastReport: 0 };
    const parts = [...plan.parts];
    const lanes = Math.min(parts.length, this.opts.maxWorkers);
    let active = 0;
    await settleAll(
      Array.from({ length: lanes }, async () => {
        while (parts.length > 0 && !this.abort.signal.aborted) {
          if (active >= this.share()) {
            await new Promise<void>((wake) => this.shareWaiters.push(wake));
            continue;
          }
          active++;
          try {
            await this.withWorker(async (w) => {
              const part = parts.shift();
              if (part) await this.copyPart(w, t, part);
            });
          } finally {
            active--;
            this.shareChanged();
          }
        }
      }),
    );
    this.abort.signal.throwIfAborted();
    t.bytesTotal = t.bytes;
    this.report(t, true);
    await this.hook(() => this.opts.onTableDone?.(spec, t.rows, t.bytes));
  }

  private async copyPart(w: Worker, t: TableState, part: Part): Promise<void> {
    const [src, dst] = await Promise.all([this.source(w), this.destination(w)]);
    this.abort.signal.throwIfAborted();
    const writer = dst.query(new CopyIn(destinationSql(t.spec, t.binary)));
    const reader = src.query(
      new CopyOut(sourceSql(t.spec, part, t.binary), t.binary, STREAM_HIGH_WATER_MARK, (bytes, rows) => {
        t.bytes += bytes;
        t.rows += rows;
        this.report(t, false);
      }),
    );
    // The first failure on either side rejects at once; the other side is then stopped by closing its connection.
    const [, rowCount] = await Promise.all([
      (async () => {
        reader.forwardTo(await writer.ready);
        await reader.done;
        writer.end();
      })(),
      writer.done,
      reader.done,
    ]);
    // The command tag is authoritative; the message count is for progress while streaming.
    t.rows += rowCount - reader.rows;
    t.partsDone++;
    this.report(t, true);
  }

  private report(t: TableState, force: boolean): void {
    if (!this.opts.onProgress) return;
    const now = performance.now();
    if (!force && now - t.lastReport < PROGRESS_EVERY_MS) return;
    t.lastReport = now;
    this.opts.onProgress({
      table: t.spec,
      rowsDone: t.rows,
      bytesDone: t.bytes,
      bytesTotal: Math.max(t.bytesTotal, t.bytes),
      partsDone: t.partsDone,
      partsTotal: t.partsTotal,
    });
  }
}

/** Waits for every promise (nothing keeps running in the background), then rethrows the first rejection. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
