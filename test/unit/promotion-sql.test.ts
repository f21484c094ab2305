/**
 * The promotion restore (defaults, sequences, OWNED BY, GENERATED ALWAYS), the setval past the source, and the
 * source-side read, on constructed inspections.
 */
import { describe, expect, it } from 'vitest';
import { tableKey, type QualifiedName } from '../../src/config/names.js';
import {
  promotionRestore,
  renameSequences,
  sequenceStateSql,
  setvalSql,
  setvalStatements,
  verifySql,
  type PromotedTable,
  type PromotionPeer,
} from '../../src/diff/promotion-sql.js';
import type { LiveSequence, LiveTable } from '../../src/inspect/types.js';
import { col, nextvalColumn, seqColumn, sequence, table } from '../support/fixtures.js';

const INT4_MAX = '2147483647';

function peer(tables: LiveTable[], sequences: LiveSequence[] = []): PromotionPeer {
  return {
    tables: Object.fromEntries(tables.map((t) => [tableKey(t), t])),
    sequences: Object.fromEntries(sequences.map((s) => [tableKey(s), s])),
  };
}

/** The destination table as mirrors creates it: no defaults, identity BY DEFAULT. */
function mirroredTable(source: LiveTable, dest: QualifiedName, exclude: string[] = []): LiveTable {
  const columns = source.columns
    .filter((c) => !exclude.includes(c.name))
    .map((c) => {
      const { default: _dropped, ...rest } = c;
      return c.generated ? c : { ...rest, hasDefault: false, identity: c.identity ? ('d' as const) : ('' as const) };
    });
  return { ...source, ...dest, columns };
}

function mapping(source: LiveTable, dest?: QualifiedName, excludeColumns: string[] = []): PromotedTable {
  return { source, destination: dest ?? { schema: source.schema, name: source.name }, excludeColumns };
}

describe('promotionRestore', () => {
  it('a serial column: the sequence is created with the source parameters, the default restored, OWNED BY the column', () => {
    const seq = sequence('public.users_id_seq', {
      dataType: 'integer',
      max: INT4_MAX,
      cache: '20',
      ownedBy: { ...seqColumn('public.users', 'id'), identity: false },
      defaultOf: [seqColumn('public.users', 'id')],
    });
    const users = table('public.users', [nextvalColumn('id', 'public.users_id_seq', 'integer'), col('name', 'text')]);
    const r = promotionRestore([mapping(users)], peer([users], [seq]), peer([mirroredTable(users, users)]));
    expect(r.problems).toEqual([]);
    const options = `AS integer INCREMENT BY 1 MINVALUE 1 MAXVALUE ${INT4_MAX} START WITH 1 CACHE 20 NO CYCLE`;
    expect(r.sql).toEqual([
      `CREATE SEQUENCE IF NOT EXISTS "public"."users_id_seq" ${options}`,
      `ALTER SEQUENCE "public"."users_id_seq" ${options}`,
      `ALTER TABLE "public"."users" ALTER COLUMN "id" SET DEFAULT nextval('"public"."users_id_seq"'::regclass)`,
      `ALTER SEQUENCE "public"."users_id_seq" OWNED BY "public"."users"."id"`,
    ]);
    expect(r.sequences).toEqual([
      {
        source: { schema: 'public', name: 'users_id_seq' },
        destination: { schema: 'public', name: 'users_id_seq' },
        identity: false,
        dataType: 'integer',
        start: '1',
        increment: '1',
        min: '1',
        max: INT4_MAX,
        cache: '20',
        cycle: false,
        usedBy: [{ table: { schema: 'public', name: 'users' }, column: 'id', type: 'integer' }],
      },
    ]);
  });

  it('a table mapped to another schema and name: its sequence goes to that schema, keeps its name, the default follows', () => {
    const seq = sequence('app.orders_id_seq', {
      ownedBy: { ...seqColumn('app.orders', 'id'), identity: false },
      defaultOf: [seqColumn('app.orders', 'id')],
    });
    const orders = table('app.orders', [nextvalColumn('id', 'app.orders_id_seq')]);
    const dest = { schema: 'staging', name: 'orders_copy' };
    const r = promotionRestore([mapping(orders, dest)], peer([orders], [seq]), peer([mirroredTable(orders, dest)]));
    expect(r.problems).toEqual([]);
    expect(r.sequences.map((s) => s.destination)).toEqual([{ schema: 'staging', name: 'orders_id_seq' }]);
    expect(r.sql).toContain(
      `ALTER TABLE "staging"."orders_copy" ALTER COLUMN "id" SET DEFAULT nextval('"staging"."orders_id_seq"'::regclass)`,
    );
    expect(r.sql).toContain(`ALTER SEQUENCE "staging"."orders_id_seq" OWNED BY "staging"."orders_copy"."id"`);
    expect(r.sql.join('\n')).not.toContain('"app"');
  });

  it('identity ALWAYS: the destination identity sequence gets the source parameters, the column becomes ALWAYS again', () => {
    const src = sequence('public.events_id_seq', {
      start: '100',
      increment: '5',
      ownedBy: { ...seqColumn('public.events', 'id'), identity: true },
    });
    const events = table('public.events', [col('id', 'bigint', { notNull: true, identity: 'a' }), col('v', 'text')]);
    // The destination named its identity sequence differently (the source table was renamed after its creation).
    const dstSeq = sequence('public.events_id_seq1', {
      ownedBy: { ...seqColumn('public.events', 'id'), identity: true },
    });
    const r = promotionRestore(
      [mapping(events)],
      peer([events], [src]),
      peer([mirroredTable(events, events)], [dstSeq]),
    );
    expect(r.problems).toEqual([]);
    expect(r.sequences).toMatchObject([
      { source: { name: 'events_id_seq' }, destination: { schema: 'public', name: 'events_id_seq1' }, identity: true },
    ]);
    expect(r.sql).toEqual([
      `ALTER SEQUENCE "public"."events_id_seq1" AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1 NO CYCLE`,
      `ALTER TABLE "public"."events" ALTER COLUMN "id" SET GENERATED ALWAYS`,
    ]);
  });

  it('identity BY DEFAULT stays BY DEFAULT: only its parameters are set', () => {
    const src = sequence('public.t_id_seq', { ownedBy: { ...seqColumn('public.t', 'id'), identity: true } });
    const t = table('public.t', [col('id', 'bigint', { notNull: true, identity: 'd' })]);
    const r = promotionRestore([mapping(t)], peer([t], [src]), peer([mirroredTable(t, t)], [src]));
    expect(r.problems).toEqual([]);
    expect(r.sql).toHaveLength(1);
    expect(r.sql[0]).toMatch(/^ALTER SEQUENCE "public"."t_id_seq" AS bigint/);
  });

  it('now() and constant defaults are copied as they are; generated columns and columns without a default are untouched', () => {
    const t = table('public.t', [
      col('id', 'bigint', { notNull: true }),
      col('at', 'timestamp with time zone', { hasDefault: true, default: 'now()' }),
      col('state', 'text', { hasDefault: true, default: `'it''s new'::text` }),
      col('doubled', 'bigint', { hasDefault: true, default: '(id * 2)', generated: 's' }),
      col('note', 'text'),
    ]);
    const r = promotionRestore([mapping(t)], peer([t]), peer([mirroredTable(t, t)]));
    expect(r).toEqual({
      sequences: [],
      problems: [],
      sql: [
        `ALTER TABLE "public"."t" ALTER COLUMN "at" SET DEFAULT now()`,
        `ALTER TABLE "public"."t" ALTER COLUMN "state" SET DEFAULT 'it''s new'::text`,
      ],
    });
  });

  it('excluded columns are left out, and a sequence only they use is not restored', () => {
    const seq = sequence('public.t_legacy_seq', {
      ownedBy: { ...seqColumn('public.t', 'legacy'), identity: false },
      defaultOf: [seqColumn('public.t', 'legacy')],
    });
    const t = table('public.t', [
      col('id', 'bigint', { notNull: true }),
      nextvalColumn('legacy', 'public.t_legacy_seq'),
      col('at', 'timestamp with time zone', { hasDefault: true, default: 'now()' }),
    ]);
    const r = promotionRestore(
      [mapping(t, undefined, ['legacy'])],
      peer([t], [seq]),
      peer([mirroredTable(t, t, ['legacy'])]),
    );
    expect(r.problems).toEqual([]);
    expect(r.sequences).toEqual([]);
    expect(r.sql).toEqual([`ALTER TABLE "public"."t" ALTER COLUMN "at" SET DEFAULT now()`]);
  });

  it('a sequence shared by two tables: created once, both defaults call it, OWNED BY its owner only', () => {
    const seq = sequence('public.ids', {
      ownedBy: { ...seqColumn('public.b', 'id'), identity: false },
      defaultOf: [seqColumn('public.a', 'id'), seqColumn('public.b', 'id')],
    });
    const a = table('public.a', [nextvalColumn('id', 'public.ids')]);
    const b = table('public.b', [nextvalColumn('id', 'public.ids')]);
    const r = promotionRestore(
      [mapping(a), mapping(b)],
      peer([a, b], [seq]),
      peer([mirroredTable(a, a), mirroredTable(b, b)]),
    );
    expect(r.problems).toEqual([]);
    expect(r.sql.filter((s) => s.startsWith('CREATE SEQUENCE'))).toHaveLength(1);
    expect(r.sql.filter((s) => s.endsWith(`SET DEFAULT nextval('"public"."ids"'::regclass)`))).toEqual([
      `ALTER TABLE "public"."a" ALTER COLUMN "id" SET DEFAULT nextval('"public"."ids"'::regclass)`,
      `ALTER TABLE "public"."b" ALTER COLUMN "id" SET DEFAULT nextval('"public"."ids"'::regclass)`,
    ]);
    expect(r.sql.filter((s) => s.includes('OWNED BY'))).toEqual([
      `ALTER SEQUENCE "public"."ids" OWNED BY "public"."b"."id"`,
    ]);
  });

  it('a sequence owned by a table the mirror leaves out lands in the schema of the first mirrored column calling it, unowned', () => {
    const seq = sequence('public.ids', {
      ownedBy: { ...seqColumn('public.unmirrored', 'id'), identity: false },
      defaultOf: [seqColumn('public.a', 'id'), seqColumn('public.b', 'id'), seqColumn('public.unmirrored', 'id')],
    });
    const a = table('public.a', [nextvalColumn('id', 'public.ids')]);
    const b = table('public.b', [nextvalColumn('id', 'public.ids')]);
    const da = { schema: 'first', name: 'a' };
    const db = { schema: 'second', name: 'b' };
    const r = promotionRestore(
      [mapping(b, db), mapping(a, da)],
      peer([a, b], [seq]),
      peer([mirroredTable(a, da), mirroredTable(b, db)]),
    );
    expect(r.problems).toEqual([]);
    expect(r.sequences.map((s) => s.destination)).toEqual([{ schema: 'first', name: 'ids' }]);
    expect(r.sql.some((s) => s.includes('OWNED BY'))).toBe(false);
    expect(r.sql).toContain(
      `ALTER TABLE "second"."b" ALTER COLUMN "id" SET DEFAULT nextval('"first"."ids"'::regclass)`,
    );
  });

  it('quotes every identifier and rewrites a default naming a quoted sequence', () => {
    const seq = sequence(`My S.it's`, {
      regclass: `"My S"."it's"`,
      ownedBy: { ...seqColumn('My S.Order Items', 'Id'), identity: false },
      defaultOf: [seqColumn('My S.Order Items', 'Id')],
    });
    const t = table('My S.Order Items', [nextvalColumn('Id', `"My S"."it's"`)]);
    expect(t.columns[0].default).toBe(`nextval('"My S"."it''s"'::regclass)`);
    const r = promotionRestore([mapping(t)], peer([t], [seq]), peer([mirroredTable(t, t)]));
    expect(r.problems).toEqual([]);
    expect(r.sql).toContain(
      `ALTER TABLE "My S"."Order Items" ALTER COLUMN "Id" SET DEFAULT nextval('"My S"."it''s"'::regclass)`,
    );
    expect(r.sql).toContain(`ALTER SEQUENCE "My S"."it's" OWNED BY "My S"."Order Items"."Id"`);
  });

  it('orders the SQL: sequences, then defaults, then OWNED BY, then GENERATED ALWAYS', () => {
    const serial = sequence('public.a_n_seq', {
      ownedBy: { ...seqColumn('public.a', 'n'), identity: false },
      defaultOf: [seqColumn('public.a', 'n')],
    });
    const ident = sequence('public.a_id_seq', { ownedBy: { ...seqColumn('public.a', 'id'), identity: true } });
    const a = table('public.a', [
      col('id', 'bigint', { notNull: true, identity: 'a' }),
      nextvalColumn('n', 'public.a_n_seq'),
    ]);
    const r = promotionRestore([mapping(a)], peer([a], [serial, ident]), peer([mirroredTable(a, a)], [ident]));
    expect(r.problems).toEqual([]);
    expect(r.sql.map((s) => s.split(' ').slice(0, 2).join(' ') + (s.includes('OWNED BY') ? ' OWNED' : ''))).toEqual([
      'ALTER SEQUENCE', // identity a_id_seq (sorted first)
      'CREATE SEQUENCE',
      'ALTER SEQUENCE',
      'ALTER TABLE',
      'ALTER SEQUENCE OWNED',
      'ALTER TABLE',
    ]);
    expect(r.sql.at(-1)).toBe(`ALTER TABLE "public"."a" ALTER COLUMN "id" SET GENERATED ALWAYS`);
  });

  describe('problems', () => {
    it('a destination table that does not exist', () => {
      const t = table('public.t');
      const r = promotionRestore([mapping(t)], peer([t]), peer([]));
      expect(r.problems.map((p) => p.code)).toEqual(['destination_table_missing']);
    });

    it('a destination column that does not exist', () => {
      const t = table('public.t', [col('id'), col('at', 'date', { hasDefault: true, default: 'CURRENT_DATE' })]);
      const d = { ...t, columns: [col('id')] };
      const r = promotionRestore([mapping(t)], peer([t]), peer([d]));
      expect(r.problems).toEqual([{ code: 'destination_column_missing', message: 'public.t has no column at' }]);
    });

    it('a source identity column whose destination column has no identity sequence', () => {
      const src = sequence('public.t_id_seq', { ownedBy: { ...seqColumn('public.t', 'id'), identity: true } });
      const t = table('public.t', [col('id', 'bigint', { notNull: true, identity: 'a' })]);
      const r = promotionRestore([mapping(t)], peer([t], [src]), peer([mirroredTable(t, t)]));
      expect(r.problems.map((p) => p.code)).toEqual(['identity_sequence_missing']);
      expect(r.sequences).toEqual([]);
    });

    it('two source schemas mapped into one destination schema whose sequences have the same name', () => {
      const s1 = sequence('one.id_seq', {
        ownedBy: { ...seqColumn('one.t', 'id'), identity: false },
        defaultOf: [seqColumn('one.t', 'id')],
      });
      const s2 = sequence('two.id_seq', {
        ownedBy: { ...seqColumn('two.u', 'id'), identity: false },
        defaultOf: [seqColumn('two.u', 'id')],
      });
      const t = table('one.t', [nextvalColumn('id', 'one.id_seq')]);
      const u = table('two.u', [nextvalColumn('id', 'two.id_seq')]);
      const dt = { schema: 'public', name: 't' };
      const du = { schema: 'public', name: 'u' };
      const r = promotionRestore(
        [mapping(t, dt), mapping(u, du)],
        peer([t, u], [s1, s2]),
        peer([mirroredTable(t, dt), mirroredTable(u, du)]),
      );
      expect(r.problems).toEqual([
        {
          code: 'sequence_name_clash',
          message: 'two.id_seq and one.id_seq would both become public.id_seq on the destination',
        },
      ]);
    });

    it('a destination name already used by a table, an index, or a sequence another column owns', () => {
      const seq = sequence('public.t_id_seq', {
        ownedBy: { ...seqColumn('public.t', 'id'), identity: false },
        defaultOf: [seqColumn('public.t', 'id')],
      });
      const t = table('public.t', [nextvalColumn('id', 'public.t_id_seq')]);
      const clash = table('public.t_id_seq');
      const asTable = promotionRestore([mapping(t)], peer([t], [seq]), peer([mirroredTable(t, t), clash]));
      expect(asTable.problems).toEqual([
        { code: 'sequence_name_taken', message: 'public.t_id_seq is a table on the destination' },
      ]);

      const indexed = table('public.other', undefined, {
        indexes: [{ name: 't_id_seq', definition: 'x', unique: false, primary: false, columns: ['id'] }],
      });
      const asIndex = promotionRestore([mapping(t)], peer([t], [seq]), peer([mirroredTable(t, t), indexed]));
      expect(asIndex.problems[0].message).toBe('public.t_id_seq is an index of public.other on the destination');

      const foreign = sequence('public.t_id_seq', { ownedBy: { ...seqColumn('public.other', 'id'), identity: true } });
      const asSequence = promotionRestore([mapping(t)], peer([t], [seq]), peer([mirroredTable(t, t)], [foreign]));
      expect(asSequence.problems[0].message).toBe(
        'public.t_id_seq is a sequence owned by public.other.id on the destination',
      );
      expect(asSequence.sql).toEqual([]);
    });

    it('none when the sequence is one an earlier restore left (owned by the same column, called by its default)', () => {
      const seq = sequence('public.t_id_seq', {
        ownedBy: { ...seqColumn('public.t', 'id'), identity: false },
        defaultOf: [seqColumn('public.t', 'id')],
      });
      const t = table('public.t', [nextvalColumn('id', 'public.t_id_seq')]);
      const first = promotionRestore([mapping(t)], peer([t], [seq]), peer([mirroredTable(t, t)]));
      // After it ran, the destination looks like the source.
      const again = promotionRestore([mapping(t)], peer([t], [seq]), peer([t], [seq]));
      expect(again.problems).toEqual([]);
      expect(again.sql).toEqual(first.sql);
    });
  });
});

describe('renameSequences', () => {
  const renamed = new Map([['public.s', { schema: 'dst', name: 's' }]]);

  it('rewrites each regclass constant naming a mapped sequence, inside any expression', () => {
    expect(renameSequences(`(nextval('public.s'::regclass) * 10)`, renamed)).toBe(
      `(nextval('"dst"."s"'::regclass) * 10)`,
    );
    expect(renameSequences(`('x-'::text || nextval('public.s'::regclass))`, renamed)).toBe(
      `('x-'::text || nextval('"dst"."s"'::regclass))`,
    );
  });

  it('leaves other sequences, text constants and quoted identifiers alone', () => {
    expect(renameSequences(`nextval('public.other'::regclass)`, renamed)).toBe(`nextval('public.other'::regclass)`);
    // The name as text, not regclass (late-bound nextval): no dependency, copied as is.
    expect(renameSequences(`nextval('public.s'::text)`, renamed)).toBe(`nextval('public.s'::text)`);
    // A text constant that contains the regclass spelling.
    const text = `'''public.s''::regclass'::text`;
    expect(renameSequences(text, renamed)).toBe(text);
    // A quote inside a quoted function name does not start a literal.
    const fn = `public."it's"('public.s'::regclass)`;
    expect(renameSequences(fn, renamed)).toBe(`public."it's"('"dst"."s"'::regclass)`);
  });
});

describe('setvalSql', () => {
  const seq = { schema: 'public', name: 't_id_seq' };
  const up = { increment: '1', min: '1', max: '9223372036854775807' };

  it('sets the sequence margin steps past the last value the source handed out', () => {
    expect(setvalSql(seq, { ...up, lastValue: '41', isCalled: true }, 1000)).toBe(
      `SELECT pg_catalog.setval('"public"."t_id_seq"'::regclass, 1041, true)`,
    );
    expect(setvalSql(seq, { ...up, lastValue: '41', isCalled: true }, 0)).toContain(', 41, true)');
    expect(setvalSql(seq, { ...up, increment: '10', lastValue: '50', isCalled: true }, 3)).toContain(', 80, true)');
  });

  it('a never-called source sequence: the destination starts where the source would after margin calls', () => {
    expect(setvalSql(seq, { ...up, lastValue: '1', isCalled: false }, 0)).toContain(', 1, false)');
    expect(setvalSql(seq, { ...up, lastValue: '1', isCalled: false }, 1000)).toContain(', 1001, false)');
  });

  it('descending sequences go down', () => {
    const down = { increment: '-3', min: '-9223372036854775808', max: '-1' };
    expect(setvalSql(seq, { ...down, lastValue: '-31', isCalled: true }, 10)).toContain(', -61, true)');
    expect(setvalSql(seq, { ...down, lastValue: '-1', isCalled: false }, 2)).toContain(', -7, false)');
  });

  it('clamps to the bounds, and a clamped value counts as handed out', () => {
    expect(setvalSql(seq, { ...up, max: '100', lastValue: '95', isCalled: true }, 1000)).toContain(', 100, true)');
    expect(setvalSql(seq, { ...up, max: '100', lastValue: '95', isCalled: false }, 1000)).toContain(', 100, true)');
    const down = { increment: '-1', min: '-100', max: '-1' };
    expect(setvalSql(seq, { ...down, lastValue: '-99', isCalled: true }, 5)).toContain(', -100, true)');
  });

  it('computes exactly beyond 2^53 and up to the bigint bounds', () => {
    expect(setvalSql(seq, { ...up, lastValue: '9007199254740993', isCalled: true }, 1000)).toContain(
      ', 9007199254741993, true)',
    );
    expect(setvalSql(seq, { ...up, lastValue: '9223372036854775000', isCalled: true }, 1000)).toContain(
      ', 9223372036854775807, true)',
    );
    const down = { increment: '-1000000000000', min: '-9223372036854775808', max: '-1' };
    expect(setvalSql(seq, { ...down, lastValue: '-9223372036854775000', isCalled: true }, 2)).toContain(
      ', -9223372036854775808, true)',
    );
  });

  it('refuses an unreadable value, a negative or fractional margin, a zero increment', () => {
    expect(() => setvalSql(seq, { ...up, lastValue: null, isCalled: false }, 10)).toThrow(/could not be read/);
    expect(() => setvalSql(seq, { ...up, lastValue: '1', isCalled: true }, -1)).toThrow(/margin/);
    expect(() => setvalSql(seq, { ...up, lastValue: '1', isCalled: true }, 1.5)).toThrow(/margin/);
    expect(() => setvalSql(seq, { ...up, increment: '0', lastValue: '1', isCalled: true }, 1)).toThrow(/increment/);
  });

  it('quotes the destination name inside the regclass literal', () => {
    expect(setvalSql({ schema: 'My S', name: `it's` }, { ...up, lastValue: '1', isCalled: true }, 0)).toBe(
      `SELECT pg_catalog.setval('"My S"."it''s"'::regclass, 1, true)`,
    );
  });
});

describe('sequenceStateSql', () => {
  const seqs = [
    { schema: 'public', name: 'a_seq' },
    { schema: 'My S', name: `it's` },
  ];

  it('before PostgreSQL 18: one UNION ALL of the sequences read as relations', () => {
    expect(sequenceStateSql(seqs, 170005)).toBe(
      `SELECT 0 AS i, last_value::text AS last_value, is_called FROM "public"."a_seq" UNION ALL ` +
        `SELECT 1 AS i, last_value::text AS last_value, is_called FROM "My S"."it's" ORDER BY i`,
    );
  });

  it('from PostgreSQL 18: pg_get_sequence_data over the list', () => {
    const sql = sequenceStateSql(seqs, 180000);
    expect(sql).toContain(`(VALUES (0, '"public"."a_seq"'::regclass), (1, '"My S"."it''s"'::regclass))`);
    expect(sql).toContain('LATERAL pg_catalog.pg_get_sequence_data(s.seq) AS d');
  });

  it('no sequences: a query returning no rows', () => {
    expect(sequenceStateSql([], 150000)).toMatch(/WHERE false$/);
  });
});

describe('setvalStatements', () => {
  const restored = [
    {
      source: { schema: 'public', name: 'a' },
      destination: { schema: 'dst', name: 'a' },
      identity: false,
      dataType: 'bigint',
      start: '1',
      increment: '1',
      min: '1',
      max: '9223372036854775807',
      cache: '1',
      cycle: false,
    },
    {
      source: { schema: 'public', name: 'b' },
      destination: { schema: 'dst', name: 'b' },
      identity: true,
      dataType: 'integer',
      start: '-1',
      increment: '-1',
      min: '-2147483648',
      max: '-1',
      cache: '1',
      cycle: false,
    },
  ];

  it('pairs each row with its sequence by index, whatever the row order', () => {
    const rows = [
      { i: 1, last_value: '-5', is_called: true },
      { i: 0, last_value: '7', is_called: true },
    ];
    expect(setvalStatements(restored, rows, 10)).toEqual([
      `SELECT pg_catalog.setval('"dst"."a"'::regclass, 17, true)`,
      `SELECT pg_catalog.setval('"dst"."b"'::regclass, -15, true)`,
    ]);
  });

  it('refuses when a sequence has no row', () => {
    expect(() => setvalStatements(restored, [{ i: 0, last_value: '7', is_called: true }], 10)).toThrow(
      'no value was read for the source sequence public.b',
    );
  });
});

describe('verifySql', () => {
  it('counts rows; checksums also sum a 64-bit slice of every row md5 over the mirrored columns, with no ORDER BY', () => {
    const q = { schema: 'public', name: 'My T' };
    expect(verifySql('counts', q, ['id'])).toBe(`SELECT count(*)::text AS n, '' AS h FROM "public"."My T"`);
    expect(verifySql('checksums', q, ['id', 'Note'])).toBe(
      `SELECT count(*)::text AS n, coalesce(sum(('x' || left(md5(ROW("id", "Note")::text), 16))::bit(64)::bigint), 0)::text AS h FROM "public"."My T"`,
    );
  });
});
