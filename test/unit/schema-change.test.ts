import { describe, expect, it } from 'vitest';
import type { ColumnFacts } from '../../src/diff/drift-columns.js';
import { type SchemaChangeInput, type SourceColumn, schemaChange, stepsSql } from '../../src/diff/schema-change.js';
import { buildPlan } from '../../src/diff/build.js';
import type { LiveColumn, PendingSchemaChange } from '../../src/inspect/types.js';
import { applied, col as fcol, config, livePeer, mirror, numbered, table } from '../support/fixtures.js';

const col = (name: string, attnum: number, type = 'integer', extra: Partial<SourceColumn> = {}): SourceColumn => ({
  name,
  type,
  attnum,
  ...extra,
});
const dcol = (name: string, type = 'integer', extra: Partial<ColumnFacts> = {}): ColumnFacts => ({
  name,
  type,
  ...extra,
});

function change(source: SourceColumn[], destination: ColumnFacts[], more: Partial<SchemaChangeInput> = {}) {
  return schemaChange({
    table: { schema: 'public', name: 'orders' },
    source,
    destination,
    excluded: [],
    kept: [],
    droppedColumns: 'drop',
    ...more,
  });
}

describe('schemaChange: the DDL for a source schema change', () => {
  it('finds nothing when the columns fit', () => {
    expect(change([col('id', 1), col('v', 2, 'text')], [dcol('id'), dcol('v', 'text')])).toBeNull();
  });

  it('adds a column without default as it is: the rows already there read NULL on both sides', () => {
    const c = change([col('id', 1), col('note', 2, 'text')], [dcol('id')])!;
    expect(c.copy).toBeNull();
    expect(stepsSql(c)).toEqual(['ALTER TABLE "public"."orders" ADD COLUMN "note" text']);
  });

  it("adds a column added with a default so that the rows already there read the source's missing value, and leaves no default", () => {
    const c = change(
      [col('id', 1), col('status', 2, 'text', { default: "'new'::text", missing: "it's new" })],
      [dcol('id')],
    )!;
    expect(c.copy).toBeNull();
    expect(stepsSql(c)).toEqual([
      `ALTER TABLE "public"."orders" ADD COLUMN "status" text DEFAULT 'it''s new'`,
      'ALTER TABLE "public"."orders" ALTER COLUMN "status" DROP DEFAULT',
    ]);
  });

  it('keeps NOT NULL of a column added NOT NULL with a default', () => {
    const c = change(
      [col('id', 1), col('n', 2, 'integer', { notNull: true, default: '0', missing: '0' })],
      [dcol('id')],
    )!;
    expect(stepsSql(c)[0]).toBe(`ALTER TABLE "public"."orders" ADD COLUMN "n" integer NOT NULL DEFAULT '0'`);
  });

  it('asks for a copy of the table when an added column got its values in a rewrite (volatile default, identity)', () => {
    const volatile = change([col('id', 1), col('r', 2, 'double precision', { default: 'random()' })], [dcol('id')])!;
    expect(volatile.copy).toMatch(/"?r"? was added with a default \(random\(\)\)/);
    expect(stepsSql(volatile)).toEqual(['ALTER TABLE "public"."orders" ADD COLUMN "r" double precision']);
    const identity = change([col('id', 1), col('n', 2, 'bigint', { identity: true, notNull: true })], [dcol('id')])!;
    expect(identity.copy).toMatch(/identity/);
    const unreadable = change(
      [col('id', 1), col('a', 2, 'integer[]', { default: "'{1}'", missing: null })],
      [dcol('id')],
    )!;
    expect(unreadable.copy).toMatch(/cannot be read back/);
  });

  it('renames a column whose attnum stayed, never drop and add', () => {
    const c = change([col('id', 1), col('total_cents', 2)], [dcol('id'), dcol('total')])!;
    expect(c.steps.map((s) => s.change)).toEqual(['rename']);
    expect(stepsSql(c)).toEqual(['ALTER TABLE "public"."orders" RENAME COLUMN "total" TO "total_cents"']);
  });

  it('reads a drop then an add in the same place as a drop and an add, not a rename', () => {
    // attnum 2 was dropped, 3 added: a dropped attnum lies between the last anchor and the new column.
    const c = change([col('id', 1), col('fresh', 3)], [dcol('id'), dcol('old')], { sourceDropped: 1 })!;
    expect(c.steps.map((s) => `${s.change} ${s.column}`)).toEqual(['drop old', 'add fresh']);
  });

  it('drops a column dropped on the source, or keeps it (nullable) under dropped_columns: keep', () => {
    const src = [col('id', 1)];
    const dst = [dcol('id'), dcol('legacy', 'text', { notNull: true })];
    const dropped = change(src, dst, { sourceDropped: 1 })!;
    expect(stepsSql(dropped)).toEqual(['ALTER TABLE "public"."orders" DROP COLUMN "legacy"']);
    const kept = change(src, dst, { sourceDropped: 1, droppedColumns: 'keep' })!;
    expect(kept.steps.map((s) => s.change)).toEqual(['keep']);
    expect(stepsSql(kept)).toEqual(['ALTER TABLE "public"."orders" ALTER COLUMN "legacy" DROP NOT NULL']);
    const keptNullable = change(src, [dcol('id'), dcol('legacy', 'text')], {
      sourceDropped: 1,
      droppedColumns: 'keep',
    })!;
    expect(stepsSql(keptNullable)).toEqual(['ALTER TABLE "public"."orders" ALTER COLUMN "legacy" DROP NOT NULL']);
    expect(kept.kept).toEqual(['legacy']);
    // Once kept, the column is no difference any more.
    expect(change(src, dst, { sourceDropped: 1, kept: ['legacy'] })).toBeNull();
  });

  it('refuses to reuse the name of a kept column for a new one (a person decides which goes)', () => {
    const c = change([col('id', 1), col('legacy', 3, 'text')], [dcol('id'), dcol('legacy', 'integer')], {
      kept: ['legacy'],
      sourceDropped: 1,
    })!;
    expect(c.unfixable.map((u) => u.kind)).toEqual(['added']);
    expect(c.steps).toEqual([]);
  });

  it('changes a type on the emptied table and asks for a copy (a type change rewrites, sending no rows)', () => {
    const c = change([col('id', 1), col('amount', 2, 'numeric(12,2)')], [dcol('id'), dcol('amount', 'integer')])!;
    expect(c.copy).toMatch(/amount changed type from integer to numeric\(12,2\)/);
    expect(stepsSql(c)).toEqual(['ALTER TABLE "public"."orders" ALTER COLUMN "amount" TYPE numeric(12,2) USING NULL']);
  });

  it('orders drops before renames before adds, so a name freed by one step can be taken by the next', () => {
    const c = change(
      [col('id', 1), col('b', 2), col('m', 3), col('c', 5, 'text')],
      [dcol('id'), dcol('a'), dcol('m'), dcol('x', 'text')],
      { sourceDropped: 1 },
    )!;
    expect(c.steps.map((s) => s.change)).toEqual(['drop', 'rename', 'add']);
  });

  it('leaves a destination altered by hand to the plan (no schema change of the source)', () => {
    const c = change([col('id', 1)], [dcol('id'), dcol('mine')], { sourceDropped: 0 })!;
    expect(c.steps).toEqual([]);
    expect(c.unfixable.map((u) => u.kind)).toEqual(['extra']);
  });

  it('ignores excluded columns on both sides but counts their attnums', () => {
    const c = change([col('id', 1), col('secret', 2, 'text'), col('note', 3, 'text')], [dcol('id')], {
      excluded: ['secret'],
    })!;
    expect(c.steps.map((s) => `${s.change} ${s.column}`)).toEqual(['add note']);
  });
});

describe('the plan of a schema change a stopped worker recorded', () => {
  const cols = numbered([fcol('id', 'bigint', { notNull: true }), fcol('amount', 'integer')]);
  function scene(pending: PendingSchemaChange | null, sourceColumns: LiveColumn[]) {
    const m = mirror('m', ['public.t']);
    const src = livePeer('prod', [table('public.t', cols)]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.t']);
    const k = 'public\u0000t';
    dst.tables[k] = { ...dst.tables[k], columns: cols.map((c) => ({ ...c })), hasGuard: true, guardState: 'enabled' };
    src.tables[k] = { ...src.tables[k], columns: sourceColumns, droppedColumns: 0 };
    dst.catalog.tables[0].pendingSchemaChange = pending;
    return buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 't' });
  }
  const retyped = [cols[0], { ...cols[1], type: 'bigint' }];

  it('is a columns update running the recorded DDL where the worker stopped, the drift it fixes no longer reported', () => {
    const p = scene(
      {
        detected_at: '2026-12-02T08:00:00.000Z',
        lsn: '0/3000',
        steps: [
          {
            change: 'add',
            column: 'note',
            type: 'text',
            sql: ['ALTER TABLE "public"."t" ADD COLUMN "note" text'],
            summary: 'add column note text',
          },
        ],
        copy: null,
        kept: [],
      },
      [...cols, fcol('note', 'text', { attnum: 3 })],
    );
    expect(p.diagnostics.map((d) => d.code)).toEqual([]);
    const a = p.actions.find((x) => x.kind === 'columns')!;
    expect(a).toMatchObject({
      id: 'update:mirror.m.table.public.t.columns',
      reason_code: 'schema_changed',
      risk: 'safe',
      before: { columns: ['id bigint', 'amount integer'] },
      after: { columns: ['id bigint', 'amount integer', 'note text'] },
      details: { sql: ['ALTER TABLE "public"."t" ADD COLUMN "note" text'], at_lsn: '0/3000', copy: null },
    });
    expect(p.actions.some((x) => x.kind === 'snapshot')).toBe(false);
  });

  it('empties the table first and copies it again when the change was a rewrite', () => {
    const p = scene(
      {
        detected_at: '2026-12-02T08:00:00.000Z',
        lsn: '0/3000',
        steps: [
          {
            change: 'retype',
            column: 'amount',
            type: 'bigint',
            sql: ['ALTER TABLE "public"."t" ALTER COLUMN "amount" TYPE bigint USING NULL'],
            summary: 'change the type',
          },
        ],
        copy: 'amount changed type from integer to bigint: ...',
        kept: [],
      },
      retyped,
    );
    const a = p.actions.find((x) => x.kind === 'columns')!;
    expect(a.risk).toBe('disruptive');
    expect((a.details as { sql: string[] }).sql[0]).toBe('TRUNCATE "public"."t"');
    const snap = p.actions.find((x) => x.kind === 'snapshot')!;
    expect(snap.depends_on).toContain(a.id);
  });

  it('without a recorded change, says what the worker will do when the stream reaches it, as a warning', () => {
    const p = scene(null, retyped);
    expect(p.diagnostics.map((d) => [d.code, d.severity])).toEqual([['MR153', 'warning']]);
    expect(p.diagnostics[0].hint).toContain(
      'change the type of amount from integer to bigint, then a copy of the table',
    );
    expect(p.actions.some((x) => x.kind === 'columns')).toBe(false);
  });
});
