/**
 * A promotion without the source (disaster recovery), pure parts: the loss estimate, the sequences set from the
 * worker's record and the destination's rows, the plan built from the record, the old source fenced once it is
 * back, and what the worker records.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import { describeLoss, lossEstimate } from '../../src/diff/loss.js';
import { setvalWithoutSourceSql } from '../../src/diff/promotion-sql.js';
import { PROMOTE_DEFAULTS } from '../../src/config/types.js';
import { reverseMirror } from '../../src/config/normalize.js';
import type { CatalogMirror, PeerLive } from '../../src/inspect/types.js';
import type { PromotionCreate } from '../../src/plan/types.js';
import { CommitRate, promotionFacts } from '../../src/worker/source-facts.js';
import {
  applied,
  col,
  config,
  livePeer,
  mirror,
  nextvalColumn,
  seqColumn,
  sequence,
  table,
} from '../support/fixtures.js';

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

describe('lossEstimate', () => {
  it('caught up: the window runs from the last instant known applied to the last time the source was heard from', () => {
    const e = lossEstimate({
      lastAppliedLsn: '0/3000000',
      appliedThrough: { lastCommitTime: iso(1_000), caughtUpAt: iso(2_000), behindSince: null },
      sourceRecord: { facts: null, pulse: { at: iso(4_500), lsn: '0/3000100', commits_per_s: 20, sequences: [] } },
    });
    expect(e).toEqual({
      applied_through: iso(2_000),
      source_last_seen: iso(4_500),
      window_ms: 2_500,
      unapplied_wal_bytes: '256',
      commits_per_s: 20,
      transactions: 50,
      synchronous: null,
    });
    expect(describeLoss(e, 'prod')).toBe(
      `about 50 transactions (2.5 s of writes, at 20 transactions/s, 256 bytes of WAL not applied) committed on peer prod after ${iso(2_000)} may be lost, and whatever it committed after it was last heard from at ${iso(4_500)}`,
    );
  });

  it('behind: the window runs from the last applied commit (not a stale behind_since); the WAL count never goes negative', () => {
    const e = lossEstimate({
      lastAppliedLsn: '0/5000000',
      appliedThrough: { lastCommitTime: iso(9_000), caughtUpAt: iso(8_000), behindSince: iso(3_000) },
      sourceRecord: { facts: null, pulse: { at: iso(16_000), lsn: '0/4000000', commits_per_s: 2.5, sequences: [] } },
    });
    expect(e.applied_through).toBe(iso(9_000));
    expect(e.window_ms).toBe(7_000);
    expect(e.transactions).toBe(18); // 17.5 rounded up
    expect(e.unapplied_wal_bytes).toBe('0');
  });

  it('without a record: unknown, and said so', () => {
    const e = lossEstimate({ lastAppliedLsn: null, appliedThrough: undefined, sourceRecord: undefined });
    expect(e).toEqual({
      applied_through: null,
      source_last_seen: null,
      window_ms: null,
      unapplied_wal_bytes: null,
      commits_per_s: null,
      transactions: null,
      synchronous: null,
    });
    expect(describeLoss(e, 'prod')).toMatch(/cannot be estimated/);
  });

  it('a sync mirror every acknowledged commit waited for: a window of zero, and why', () => {
    const e = lossEstimate(
      {
        lastAppliedLsn: '0/3000000',
        appliedThrough: { lastCommitTime: iso(1_000), caughtUpAt: iso(2_000), behindSince: null },
        sourceRecord: { facts: null, pulse: { at: iso(4_500), lsn: '0/3000000', commits_per_s: 20, sequences: [] } },
      },
      'every commit the source acknowledged waited for this mirror (...)',
    );
    expect(e).toMatchObject({ window_ms: 0, transactions: 0, applied_through: iso(2_000) });
    expect(describeLoss(e, 'prod')).toMatch(/^none that peer prod acknowledged: every commit the source acknowledged/);
  });
});

describe('setvalWithoutSourceSql', () => {
  const seq = {
    destination: { schema: 'public', name: 'orders_id_seq' },
    increment: '1',
    min: '1',
    max: '2147483647',
    start: '1',
    usedBy: [
      { table: { schema: 'public', name: 'orders' }, column: 'id', type: 'integer' },
      { table: { schema: 'public', name: 'orders' }, column: 'ref', type: 'text' },
    ],
  };

  it('takes the further of the recorded value and the rows (integer columns only), plus the margin, as the next value', () => {
    expect(setvalWithoutSourceSql(seq, { last_value: '41', is_called: true }, 1000)).toBe(
      `SELECT CASE WHEN v > 2147483647 THEN pg_catalog.setval('"public"."orders_id_seq"'::regclass, 2147483647, true) WHEN v < 1 THEN pg_catalog.setval('"public"."orders_id_seq"'::regclass, 1, true) ELSE pg_catalog.setval('"public"."orders_id_seq"'::regclass, v::bigint, false) END FROM (SELECT (coalesce(greatest(42, (SELECT max("id")::numeric + 1 FROM "public"."orders")) + 1000, 1))::numeric AS v) AS next`,
    );
  });

  it('a never-called sequence hands out its last_value next; a descending one goes down from the lowest row', () => {
    expect(setvalWithoutSourceSql({ ...seq, usedBy: [] }, { last_value: '5', is_called: false }, 0)).toContain(
      'coalesce(greatest(5) + 0, 1)',
    );
    const down = { ...seq, increment: '-2', min: '-100', max: '-1', start: '-1' };
    expect(setvalWithoutSourceSql(down, null, 10)).toContain(
      'coalesce(least((SELECT min("id")::numeric + -2 FROM "public"."orders")) + -20, -1)',
    );
  });

  it('with nothing known, starts where the source started', () => {
    expect(setvalWithoutSourceSql({ ...seq, usedBy: [] }, null, 1000)).toContain('FROM (SELECT (1)::numeric AS v)');
  });
});

describe('promotion plan without the source', () => {
  const users = table('public.users', [
    nextvalColumn('id', 'public.users_id_seq'),
    col('name', 'text', { hasDefault: true, default: "'anon'::text" }),
  ]);
  const usersSeq = sequence('public.users_id_seq', {
    ownedBy: { ...seqColumn('public.users', 'id'), identity: false },
    defaultOf: [seqColumn('public.users', 'id')],
  });

  function setup(record: Partial<CatalogMirror> = {}, live: (dst: PeerLive) => void = () => {}) {
    const m = mirror('m', ['public.users'], { promote: { ...PROMOTE_DEFAULTS } });
    const src = livePeer('prod', [users]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    Object.assign(dst.catalog.mirrors.m, {
      status: 'Disconnected',
      lastAppliedLsn: '0/3000000',
      appliedThrough: { lastCommitTime: iso(0), caughtUpAt: iso(1_000), behindSince: null },
      sourceRecord: {
        facts: { at: iso(0), server_version_num: 170000, tables: [users], sequences: [usersSeq] },
        pulse: {
          at: iso(3_000),
          lsn: '0/3000000',
          commits_per_s: 10,
          sequences: [{ schema: 'public', name: 'users_id_seq', last_value: '77', is_called: true }],
        },
      },
      ...record,
    });
    live(dst);
    return buildPlan(
      config([m]),
      { peers: { staging: dst }, unreachable: { prod: 'peer prod (127.0.0.1:1/db): cannot connect (ECONNREFUSED)' } },
      { selected: null, createdBy: 'test' },
    );
  }
  const codes = (p: ReturnType<typeof setup>) => p.diagnostics.map((d) => d.code);

  it('plans one irreversible promotion with no fence, the loss estimate, and defaults and sequences from the record', () => {
    const p = setup();
    expect(codes(p)).toEqual(['MR180']);
    expect(p.diagnostics[0].message).toMatch(/WITHOUT a fence.*about 20 transactions/);
    const a = p.actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(a).toMatchObject({ risk: 'irreversible', reason_code: 'promotion_without_source' });
    expect(a.details.fence_sql).toEqual([]);
    expect(a.details.cleanup_sql).toEqual([]);
    expect(a.details.without_source?.loss.window_ms).toBe(2_000);
    expect(a.details.without_source?.facts_at).toBe(iso(0));
    expect(a.details.restore_sql[0]).toMatch(/^DROP TRIGGER IF EXISTS "mirrors_read_only"/);
    expect(a.details.restore_sql).toContain(
      `ALTER TABLE "public"."users" ALTER COLUMN "name" SET DEFAULT 'anon'::text`,
    );
    expect(a.details.restore_sql.at(-1)).toMatch(
      /greatest\(78, \(SELECT max\("id"\)::numeric \+ 1 FROM "public"\."users"\)\) \+ 1000/,
    );
  });

  it('a mirror never copied completely is refused (MR171): its tables are not a copy of the source', () => {
    const p = setup({}, (dst) => {
      dst.catalog.tables[0].state = 'copying';
    });
    expect(codes(p)).toContain('MR171');
    expect(p.actions.some((x) => x.kind === 'promotion')).toBe(false);
  });

  it('without a record of the source, promotes but says the defaults and sequences are not restored (MR182)', () => {
    const p = setup({ sourceRecord: { facts: null, pulse: null } });
    expect(codes(p)).toEqual(['MR180', 'MR182']);
    const a = p.actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(a.details.restore_sql).toHaveLength(1); // the guard only
  });

  it('refuses promote.reverse (MR186): its destination is the source that cannot be reached', () => {
    const m = mirror('m', ['public.users'], { promote: { ...PROMOTE_DEFAULTS, reverse: true } });
    const dst = livePeer('staging');
    applied(m, livePeer('prod', [users]), dst, ['public.users']);
    const p = buildPlan(
      config([m, { ...reverseMirror(m, 'm_reverse'), reverseOf: 'm' }]),
      { peers: { staging: dst }, unreachable: { prod: 'cannot connect' } },
      { selected: null, createdBy: 'test' },
    );
    expect(p.diagnostics.map((d) => d.code)).toContain('MR186');
    expect(p.actions).toEqual([]);
  });

  it('a promoted mirror with its old source unreachable plans nothing and says what waits (MR183)', () => {
    const p = setup({ promotedAt: iso(5_000), status: 'Promoted' });
    expect(codes(p)).toEqual(['MR183']);
    expect(p.actions).toEqual([]);
  });

  it('the old source back after an unfenced promotion: it is fenced, its slot and publication dropped; once fenced, only leftovers', () => {
    const back = (promotion: Record<string, unknown>) => {
      const m = mirror('m', ['public.users'], { promote: { ...PROMOTE_DEFAULTS } });
      const src = livePeer('prod', [users]);
      const dst = livePeer('staging');
      applied(m, src, dst, ['public.users']);
      Object.assign(dst.catalog.mirrors.m, { promotedAt: iso(5_000), status: 'Promoted', promotion });
      return buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 'test' });
    };
    const a = back({ state: 'promoted', unfenced: true }).actions[0] as PromotionCreate;
    expect(a).toMatchObject({ risk: 'irreversible', reason_code: 'promotion_unfinished' }); // it drops the slot
    expect(a.details.fence_after).toBe(true);
    expect(a.reason).toMatch(/fence its 1 table, drop its slot, drop its publication/);
    expect(a.details.fence_sql.some((s) => s.startsWith('LOCK TABLE "public"."users"'))).toBe(true);
    const fenced = back({ state: 'promoted', unfenced: true, source_fenced: true }).actions[0] as PromotionCreate;
    expect(fenced.details.fence_after).toBe(false);
    expect(fenced.details.fence_sql).toEqual([]);
  });
});

describe('what the worker records', () => {
  it('keeps the mirrored tables and the sequences they own or call, nothing else of the source', () => {
    const other = table('public.other', [nextvalColumn('id', 'public.other_id_seq')]);
    const users = table('public.users', [nextvalColumn('id', 'public.users_id_seq')]);
    const src = livePeer('prod', [users, other]);
    src.sequences = {
      a: sequence('public.users_id_seq', { defaultOf: [seqColumn('public.users', 'id')] }),
      b: sequence('public.other_id_seq', { ownedBy: { ...seqColumn('public.other', 'id'), identity: false } }),
    };
    const f = promotionFacts(src, [{ schema: 'public', name: 'users' }], iso(0));
    expect(f.tables.map((t) => t.name)).toEqual(['users']);
    expect(f.sequences.map((q) => q.name)).toEqual(['users_id_seq']);
    expect(JSON.stringify(f)).not.toContain('\\u0000'); // jsonb refuses NUL
  });

  it('a commit rate over the last minute, unknown for the first seconds', () => {
    const r = new CommitRate(T0);
    r.add(10, T0 + 1_000);
    expect(r.perSecond(T0 + 2_000)).toBeNull();
    r.add(40, T0 + 9_000);
    expect(r.perSecond(T0 + 10_000)).toBe(5);
    expect(r.perSecond(T0 + 70_500)).toBe(0); // both samples older than the window
  });
});
