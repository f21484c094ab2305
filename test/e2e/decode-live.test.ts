/**
 * The pgoutput decoder on what a real server sends: raw messages from pg_logical_slot_get_binary_changes
 * (protocol 1), decoded one by one. Values must equal the source's own `col::text`, unchanged TOAST values
 * must be `undefined`, REPLICA IDENTITY FULL must carry the old row, and timestamps must be exact.
 */
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { lsnToBigInt } from '../../src/db/lsn.js';
import { quoteIdent } from '../../src/db/quote.js';
import { decodePgoutput, type PgoutputMessage, type TupleValue } from '../../src/worker/decode.js';
import { useClusters } from '../support/clusters.js';

const clusters = useClusters(['pg']);
const DB = 'decode_live';

const SETUP = `
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE SCHEMA "Schéma";
CREATE TABLE "Schéma".kinds (
  id bigint PRIMARY KEY,
  dropped_before_insert int,
  n numeric(30,10),
  j jsonb,
  tarr text[],
  b bytea,
  ts timestamptz,
  f float8,
  iv interval,
  m mood,
  "Ünï cøde ""col""" text,
  nothing int,
  empty text,
  note text,
  doubled bigint GENERATED ALWAYS AS (id * 2) STORED,
  big text
);
ALTER TABLE "Schéma".kinds DROP COLUMN dropped_before_insert;
-- Out of line and uncompressed, so an UPDATE that leaves it alone sends it as 'u' (unchanged TOAST).
ALTER TABLE "Schéma".kinds ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE full_rows (id int PRIMARY KEY, v text);
ALTER TABLE full_rows REPLICA IDENTITY FULL;
CREATE PUBLICATION pub FOR TABLE "Schéma".kinds, full_rows;
`;

/** Columns pgoutput publishes, in order: no dropped or generated columns. */
const PUBLISHED = [
  'id',
  'n',
  'j',
  'tarr',
  'b',
  'ts',
  'f',
  'iv',
  'm',
  'Ünï cøde "col"',
  'nothing',
  'empty',
  'note',
  'big',
];

const BIG = `SELECT string_agg(md5(g::text) || 'é✓', '') FROM generate_series(1, 400) g`; // ~14 kB

const INSERT_KINDS = `
INSERT INTO "Schéma".kinds (id, n, j, tarr, b, ts, f, iv, m, "Ünï cøde ""col""", nothing, empty, note, big)
VALUES
  (1, 12345678901234567890.0123456789, '{"a": [1, 2, {"b": null}], "ü": "✓"}', ARRAY['a,b', 'c"d', NULL, '', 'ü'],
   decode('00ff10deadbeef', 'hex'), '2026-03-04 05:06:07.891011+00', 0.1, '1 year 2 mons 3 days 04:05:06.789', 'it''s complicated',
   'こんにちは 🌏', NULL, '', 'first', (${BIG})),
  (2, -0.5, 'null', '{}', '', '1999-12-31 23:59:59.999999+00', 'NaN', '-1 day', 'sad', 'x', 7, '', NULL, NULL)`;

type Row = { data: Buffer; xid: string; lsn: string };

let messages: PgoutputMessage[];
let rows: Row[];
let sourceText: TupleValue[][];
let kindsOid: number;
let fullRowsOid: number;
let moodOid: number;
let emitLsn: bigint;
const started = Date.now();

async function textOfKinds(): Promise<TupleValue[][]> {
  const cols = PUBLISHED.map((c, i) => `${quoteIdent(c)}::text AS c${i}`).join(', ');
  const got = await clusters.pg.query<Record<string, string | null>>(
    `SELECT ${cols} FROM "Schéma".kinds ORDER BY id`,
    [],
    DB,
  );
  return got.map((r) => PUBLISHED.map((_c, i) => r[`c${i}`]));
}

beforeAll(async () => {
  await clusters.pg.createDatabase(DB);
  // Value text follows the decoding session's settings (TimeZone, DateStyle, ...); pin a non-UTC zone.
  await clusters.pg.query(`ALTER DATABASE ${DB} SET timezone = 'Asia/Kolkata'`);
  await clusters.pg.query(SETUP, [], DB);
  // Not in the setup's implicit transaction: a slot cannot be created by a transaction that wrote.
  await clusters.pg.query(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`, [], DB);
  const [oids] = await clusters.pg.query<{ kinds: string; full_rows: string; mood: string }>(
    `SELECT '"Schéma".kinds'::regclass::oid::text AS kinds, 'full_rows'::regclass::oid::text AS full_rows, 'mood'::regtype::oid::text AS mood`,
    [],
    DB,
  );
  kindsOid = Number(oids.kinds);
  fullRowsOid = Number(oids.full_rows);
  moodOid = Number(oids.mood);

  await clusters.pg.query(INSERT_KINDS, [], DB); // txn 1
  sourceText = await textOfKinds();
  await clusters.pg.query(`UPDATE "Schéma".kinds SET note = 'changed' WHERE id = 1`, [], DB); // txn 2
  await clusters.pg.query(`UPDATE "Schéma".kinds SET id = 3 WHERE id = 2`, [], DB); // txn 3
  await clusters.pg.query(`DELETE FROM "Schéma".kinds WHERE id = 3`, [], DB); // txn 4
  await clusters.pg.query(
    `INSERT INTO full_rows VALUES (1, 'a'); UPDATE full_rows SET v = NULL WHERE id = 1; DELETE FROM full_rows`,
    [],
    DB,
  ); // txn 5
  // txn 6, with a replication origin: an Origin message follows its Begin.
  const client = new pg.Client({ connectionString: clusters.pg.url(DB) });
  await client.connect();
  try {
    await client.query(`SELECT pg_replication_origin_create('upstream ✓')`);
    await client.query(`SELECT pg_replication_origin_session_setup('upstream ✓')`);
    await client.query('BEGIN');
    await client.query(`SELECT pg_replication_origin_xact_setup('1/2345ABCD', now())`);
    await client.query(`INSERT INTO full_rows VALUES (9, 'from upstream')`);
    await client.query('COMMIT');
    await client.query(`SELECT pg_replication_origin_session_reset()`);
  } finally {
    await client.end();
  }
  const [emitted] = await clusters.pg.query<{ lsn: string }>(
    `SELECT pg_logical_emit_message(false, 'mirrors', '\\x00ff'::bytea)::text AS lsn`,
    [],
    DB,
  );
  emitLsn = lsnToBigInt(emitted.lsn);
  await clusters.pg.query(`TRUNCATE "Schéma".kinds, full_rows RESTART IDENTITY`, [], DB); // txn 7

  rows = await clusters.pg.query<Row>(
    `SELECT lsn::text AS lsn, xid::text AS xid, data FROM pg_logical_slot_get_binary_changes('s', NULL, NULL,
       'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')`,
    [],
    DB,
  );
  messages = rows.map((r) => decodePgoutput(r.data));
});

/** Messages between each Begin and its Commit. */
function transactions(): PgoutputMessage[][] {
  const txns: PgoutputMessage[][] = [];
  let open: PgoutputMessage[] | undefined;
  for (const m of messages) {
    if (m.tag === 'begin') txns.push((open = [m]));
    else if (open) open.push(m);
    if (m.tag === 'commit') open = undefined;
  }
  return txns;
}

function only<T extends PgoutputMessage['tag']>(
  m: PgoutputMessage | undefined,
  tag: T,
): Extract<PgoutputMessage, { tag: T }> {
  if (!m || m.tag !== tag) throw new Error(`expected ${tag}, got ${m?.tag}`);
  return m as Extract<PgoutputMessage, { tag: T }>;
}

describe('decodePgoutput on a live pgoutput stream', () => {
  it('decodes every message into the expected sequence', () => {
    expect(messages.map((m) => m.tag)).toEqual([
      ...['begin', 'type', 'relation', 'insert', 'insert', 'commit'],
      ...['begin', 'update', 'commit'],
      ...['begin', 'update', 'commit'],
      ...['begin', 'delete', 'commit'],
      ...['begin', 'relation', 'insert', 'update', 'delete', 'commit'],
      ...['begin', 'origin', 'insert', 'commit'],
      'message',
      // TRUNCATE gives the tables new files; the relcache invalidation makes pgoutput describe them again.
      ...['begin', 'type', 'relation', 'relation', 'truncate', 'commit'],
    ]);
  });

  it('describes the relation and its enum type', () => {
    expect(messages[1]).toEqual({ tag: 'type', typeOid: moodOid, schema: 'public', name: 'mood' });
    const rel = only(messages[2], 'relation');
    expect(rel).toMatchObject({ relationOid: kindsOid, schema: 'Schéma', name: 'kinds', replicaIdentity: 'd' });
    expect(rel.columns.map((c) => c.name)).toEqual(PUBLISHED);
    expect(rel.columns.filter((c) => c.isKey).map((c) => c.name)).toEqual(['id']);
    expect(rel.columns.find((c) => c.name === 'n')).toEqual({
      name: 'n',
      typeOid: 1700,
      typmod: (30 << 16) + 10 + 4,
      isKey: false,
    });
    expect(rel.columns.find((c) => c.name === 'm')?.typeOid).toBe(moodOid);
    expect(rel.columns.find((c) => c.name === 'tarr')).toMatchObject({ typeOid: 1009, typmod: -1 });
  });

  it('sends inserted values exactly as the source prints them', () => {
    const inserted = messages
      .filter((m) => m.tag === 'insert' && m.relationOid === kindsOid)
      .map((m) => only(m, 'insert').newTuple);
    expect(inserted).toEqual(sourceText);
    expect(inserted[0][PUBLISHED.indexOf('ts')]).toBe('2026-03-04 10:36:07.891011+05:30');
    expect((inserted[0][PUBLISHED.indexOf('big')] as string).length).toBeGreaterThan(10_000);
    expect(inserted[0][PUBLISHED.indexOf('nothing')]).toBeNull();
    expect(inserted[0][PUBLISHED.indexOf('empty')]).toBe('');
  });

  it('marks an unchanged TOASTed column as undefined, and a changed key with the old key', () => {
    const [, second, third] = transactions();
    const update = only(second[1], 'update');
    expect(update.relationOid).toBe(kindsOid);
    expect(update.keyTuple).toBeUndefined();
    expect(update.oldTuple).toBeUndefined();
    const expected: TupleValue[] = [...sourceText[0]];
    expected[PUBLISHED.indexOf('note')] = 'changed';
    expected[PUBLISHED.indexOf('big')] = undefined;
    expect(update.newTuple).toEqual(expected);
    expect(update.newTuple).toHaveLength(PUBLISHED.length);
    expect(update.newTuple[PUBLISHED.indexOf('big')]).toBeUndefined();
    expect(update.newTuple[PUBLISHED.indexOf('nothing')]).toBeNull();

    const keyChange = only(third[1], 'update');
    // The old key, with every non-key column NULL.
    expect(keyChange.keyTuple).toEqual(PUBLISHED.map((c) => (c === 'id' ? '2' : null)));
    expect(keyChange.newTuple[0]).toBe('3');
  });

  it('deletes by key under REPLICA IDENTITY DEFAULT', () => {
    const del = only(transactions()[3][1], 'delete');
    expect(del).toEqual({
      tag: 'delete',
      relationOid: kindsOid,
      keyTuple: PUBLISHED.map((c) => (c === 'id' ? '3' : null)),
    });
  });

  it('carries the whole old row under REPLICA IDENTITY FULL', () => {
    const txn = transactions()[4];
    expect(only(txn[1], 'relation')).toMatchObject({
      relationOid: fullRowsOid,
      schema: 'public',
      name: 'full_rows',
      replicaIdentity: 'f',
      columns: [
        { name: 'id', typeOid: 23, typmod: -1, isKey: true },
        { name: 'v', typeOid: 25, typmod: -1, isKey: true },
      ],
    });
    expect(txn.slice(2, 5)).toEqual([
      { tag: 'insert', relationOid: fullRowsOid, newTuple: ['1', 'a'] },
      { tag: 'update', relationOid: fullRowsOid, oldTuple: ['1', 'a'], newTuple: ['1', null] },
      { tag: 'delete', relationOid: fullRowsOid, oldTuple: ['1', null] },
    ]);
  });

  it('reports the replication origin of a transaction', () => {
    const txn = transactions()[5];
    expect(txn[1]).toEqual({ tag: 'origin', originLsn: lsnToBigInt('1/2345ABCD'), name: 'upstream ✓' });
    expect(txn[2]).toEqual({ tag: 'insert', relationOid: fullRowsOid, newTuple: ['9', 'from upstream'] });
  });

  it('decodes a non-transactional logical message', () => {
    const msg = messages.find((m) => m.tag === 'message');
    expect(msg).toEqual({
      tag: 'message',
      transactional: false,
      lsn: emitLsn,
      prefix: 'mirrors',
      content: Buffer.from([0, 255]),
    });
  });

  it('decodes a truncate of several relations', () => {
    const txn = transactions()[6];
    expect(txn.slice(1, 4).map((m) => (m.tag === 'relation' ? m.relationOid : m.tag))).toEqual([
      'type',
      kindsOid,
      fullRowsOid,
    ]);
    const t = only(txn[4], 'truncate');
    expect(t).toMatchObject({ cascade: false, restartIdentity: true });
    expect([...t.relationOids].sort()).toEqual([kindsOid, fullRowsOid].sort());
  });

  it('pairs each Begin with its Commit: same LSN, same exact commit time', async () => {
    const txns = transactions();
    expect(txns).toHaveLength(7);
    let previousEnd = 0n;
    for (const txn of txns) {
      const begin = only(txn[0], 'begin');
      const commit = only(txn.at(-1), 'commit');
      expect(begin.finalLsn).toBe(commit.commitLsn);
      expect(commit.endLsn).toBeGreaterThan(commit.commitLsn);
      expect(commit.commitLsn).toBeGreaterThanOrEqual(previousEnd);
      previousEnd = commit.endLsn;
      expect(commit.flags).toBe(0);
      expect(begin.commitTimeMicros).toBe(commit.commitTimeMicros);
      expect(begin.commitTime).toBe(commit.commitTime);
      expect(commit.commitTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(Date.parse(commit.commitTime)).toBeGreaterThanOrEqual(started - 60_000);
      expect(Date.parse(commit.commitTime)).toBeLessThanOrEqual(Date.now() + 60_000);
    }
    // The server records microseconds: not every commit lands on a whole millisecond.
    expect(txns.some((t) => only(t[0], 'begin').commitTimeMicros % 1000n !== 0n)).toBe(true);
    // Postgres itself agrees on the text of each commit time.
    const micros = txns.map((t) => only(t[0], 'begin').commitTimeMicros.toString());
    const printed = await clusters.pg.query<{ t: string }>(
      `SELECT to_char(('2000-01-01 00:00:00+00'::timestamptz + m::int8 * interval '1 microsecond') AT TIME ZONE 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
         FROM unnest($1::text[]) WITH ORDINALITY u(m, i) ORDER BY i`,
      [micros],
      DB,
    );
    expect(printed.map((p) => p.t)).toEqual(txns.map((t) => only(t[0], 'begin').commitTime));
  });

  it('gives each Begin the transaction id the server reports', () => {
    rows.forEach((r, i) => {
      const m = messages[i];
      if (m.tag === 'begin') expect(m.xid).toBe(Number(r.xid));
    });
  });
});
