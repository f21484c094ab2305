/** The plan of a declared promotion: its preflight (MR170-MR177, MR184), its reverse mirror, and the statements apply runs. Pure. */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import { fenceSql } from '../../src/diff/promotion.js';
import { PROMOTE_DEFAULTS, type PromoteSpec } from '../../src/config/types.js';
import type { PeerLive } from '../../src/inspect/types.js';
import type { PromotionCreate, PromotionOpen } from '../../src/plan/types.js';
import { reverseMirror } from '../../src/config/normalize.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

function setup(promote: Partial<PromoteSpec> = {}, live: (src: PeerLive, dst: PeerLive) => void = () => {}) {
  const m = mirror('m', ['public.users'], { promote: { ...PROMOTE_DEFAULTS, ...promote } });
  const src = livePeer('prod', [table('public.users')]);
  const dst = livePeer('staging');
  applied(m, src, dst, ['public.users']);
  Object.assign(dst.catalog.mirrors.m, { leaseHeld: true, heartbeatAgeMs: 400 });
  live(src, dst);
  return buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 'test' });
}

/** The diagnostics that decide (the write pause note, MR185, comes with every planned promotion). */
const codes = (p: ReturnType<typeof setup>) => p.diagnostics.filter((d) => d.severity !== 'note').map((d) => d.code);

describe('promotion plan', () => {
  it('plans one irreversible promotion of a Following mirror, with the fence and the restore spelled out', () => {
    const p = setup();
    expect(codes(p)).toEqual([]);
    const a = p.actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(a).toMatchObject({
      op: 'create',
      risk: 'irreversible',
      peer: 'staging',
      mirror: 'm',
      reason_code: 'promotion_declared',
    });
    expect(a.details.fence_sql.some((s) => s.startsWith('LOCK TABLE "public"."users" IN EXCLUSIVE MODE'))).toBe(true);
    expect(a.details.fence_sql).toContain('ALTER TABLE "public"."users" ENABLE ALWAYS TRIGGER "mirrors_fenced"');
    expect(a.details.restore_sql[0]).toMatch(/^DROP TRIGGER IF EXISTS "mirrors_read_only"/);
    // The truncate relay goes too, whether or not the mirror had one (IF EXISTS).
    expect(a.details.cleanup_sql).toEqual([
      'DROP PUBLICATION IF EXISTS "mirrors_m"',
      'DROP FUNCTION IF EXISTS "mirrors"."m_truncates"() CASCADE',
      'DROP TABLE IF EXISTS "mirrors"."m_truncates"',
    ]);
    expect(p.actions).toHaveLength(1);
  });

  it('says the write pause before anyone consents: the lag the worker last saw, bounded by max_fence_wait (MR185)', () => {
    const p = setup({ max_fence_wait_ms: 30_000 }, (_s, d) =>
      Object.assign(d.catalog.mirrors.m, {
        appliedThrough: { lastCommitTime: null, caughtUpAt: null, behindSince: '2026-12-02T10:00:00.000Z' },
        sourceRecord: {
          facts: null,
          pulse: { at: '2026-12-02T10:00:01.500Z', lsn: '0/1', commits_per_s: 1, sequences: [] },
        },
      }),
    );
    const note = p.diagnostics.find((d) => d.code === 'MR185');
    expect(note?.severity).toBe('note');
    expect(note?.message).toMatch(/expected about 1\.5 s \(the lag the worker last saw\).*at most 30 s/);
  });

  it('keeps the plan stable while the mirror streams (a saved plan stays valid): no position in it', () => {
    const a = (lsn: string) =>
      setup({}, (_s, d) => Object.assign(d.catalog.mirrors.m, { lastAppliedLsn: lsn })).actions.find(
        (x) => x.kind === 'promotion',
      );
    expect(a('0/2000')).toEqual(a('5/FFFF0000'));
  });

  it('refuses a mirror no worker streams, or that is not Following (MR170)', () => {
    expect(codes(setup({}, (_s, d) => Object.assign(d.catalog.mirrors.m, { leaseHeld: false })))).toEqual(['MR170']);
    expect(codes(setup({}, (_s, d) => Object.assign(d.catalog.mirrors.m, { status: 'Degraded' })))).toEqual(['MR170']);
    expect(codes(setup({}, (_s, d) => Object.assign(d.catalog.mirrors.m, { heartbeatAgeMs: 60_000 })))).toEqual([
      'MR170',
    ]);
  });

  it('refuses a mirror still being copied (MR171), and plans nothing for it', () => {
    const p = setup({}, (_s, d) => {
      d.catalog.tables[0].state = 'copying';
    });
    expect(codes(p)).toContain('MR171');
    expect(p.actions.some((x) => x.kind === 'promotion')).toBe(false);
  });

  it('refuses a source that is not the server and database the mirror was created from (MR174)', () => {
    const other = setup({}, (s, d) => {
      Object.assign(s, { systemIdentifier: '2', databaseOid: '16384' });
      Object.assign(d.catalog.mirrors.m, { sourceIdentity: { systemIdentifier: '1', databaseOid: '16384' } });
    });
    expect(codes(other)).toEqual(['MR174']);
    const same = setup({}, (s, d) => {
      Object.assign(s, { systemIdentifier: '1', databaseOid: '16384' });
      Object.assign(d.catalog.mirrors.m, { sourceIdentity: { systemIdentifier: '1', databaseOid: '16384' } });
    });
    expect(codes(same)).toEqual([]);
  });

  it('names the privileges the fence and the point of no return need when a role lacks them (MR177)', () => {
    const p = setup({}, (s, d) => {
      Object.assign(s.tables['public\u0000users'], { owned: false, owner: 'app' });
      s.role.canCreateInDatabase = false;
      Object.assign(d.tables['public\u0000users'], { owned: false, owner: 'admin' });
    });
    expect(codes(p)).toEqual(['MR177']);
    const hint = p.diagnostics[0].hint;
    expect(hint).toContain('ALTER TABLE "public"."users" OWNER TO "mirrors";');
    expect(hint).toContain('GRANT CREATE ON DATABASE "app" TO "mirrors";');
  });

  it('names EXECUTE on pg_logical_emit_message (the marker) and, for read_only_source, ownership of the source database (MR177)', () => {
    const p = setup({ read_only_source: true }, (s) => {
      s.role.canEmitMessage = false;
      s.role.ownsDatabase = false;
    });
    expect(codes(p)).toEqual(['MR177']);
    expect(p.diagnostics[0].hint).toContain(
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO "mirrors";',
    );
    expect(p.diagnostics[0].hint).toContain('ALTER DATABASE "app" OWNER TO "mirrors";');
    expect(codes(setup({}, (s) => (s.role.ownsDatabase = false)))).toEqual([]);
  });

  it('read_only_source: the old source database is made read-only after the point of no return', () => {
    const a = setup({ read_only_source: true }).actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(a.details.read_only_sql).toEqual(['ALTER DATABASE "app" SET default_transaction_read_only = on']);
    const off = setup().actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(off.details.read_only_sql).toEqual([]);
  });

  describe('with a reverse mirror', () => {
    /** The forward mirror m and its reverse m_reverse (as the config synthesizes it), planned together. */
    function reversed(live: (src: PeerLive, dst: PeerLive) => void = () => {}) {
      const m = mirror('m', ['public.users'], { promote: { ...PROMOTE_DEFAULTS, reverse: true } });
      const src = livePeer('prod', [table('public.users', undefined, {})]);
      const dst = livePeer('staging');
      applied(m, src, dst, ['public.users']);
      Object.assign(dst.catalog.mirrors.m, { leaseHeld: true, heartbeatAgeMs: 400 });
      live(src, dst);
      const cfg = config([m, { ...reverseMirror(m, 'm_reverse'), reverseOf: 'm' }]);
      return buildPlan(cfg, { peers: { prod: src, staging: dst } }, { selected: ['m'], createdBy: 'test' });
    }
    const ids = (p: ReturnType<typeof reversed>) => p.actions.map((a) => a.id);

    it('creates the reverse mirror without a copy between the point of no return and the opening, which alone drops the guards', () => {
      const p = reversed();
      expect(codes(p)).toEqual([]);
      const order = ids(p);
      const at = (id: string) => order.indexOf(id);
      expect(at('create:mirror.m.promotion')).toBeLessThan(at('create:mirror.m_reverse.slot'));
      expect(at('create:mirror.m_reverse.slot')).toBeLessThan(at('update:mirror.m.promotion'));
      expect(at('create:mirror.m_reverse.stream')).toBeLessThan(at('update:mirror.m.promotion'));
      const create = p.actions.find((a) => a.id === 'create:mirror.m.promotion') as PromotionCreate;
      expect(create.details.reverse_mirror).toBe('m_reverse');
      expect(create.details.restore_sql.some((s) => s.includes('mirrors_read_only'))).toBe(false);
      const snap = p.actions.find((a) => a.id === 'create:mirror.m_reverse.snapshot');
      expect(snap?.kind === 'snapshot' && snap.details.copy).toBe(false);
      const open = p.actions.find((a) => a.id === 'update:mirror.m.promotion') as PromotionOpen;
      expect(open).toMatchObject({ risk: 'irreversible', peer: 'staging' });
      expect(open.details.source_sql).toEqual(['DROP TRIGGER IF EXISTS "mirrors_fenced" ON "public"."users"']);
      expect(open.details.destination_sql).toEqual(['DROP TRIGGER IF EXISTS "mirrors_read_only" ON "public"."users"']);
    });

    it('a GENERATED ALWAYS identity on the old source becomes BY DEFAULT: the reverse worker writes its values', () => {
      const p = reversed((s) => {
        s.tables['public\u0000users'].columns[0].identity = 'a';
      });
      const t = p.actions.find((a) => a.id === 'create:mirror.m_reverse.table.public.users');
      expect(t?.kind === 'table' && t.op === 'create' && t.details.sql).toContain(
        'ALTER TABLE "public"."users" ALTER COLUMN "id" SET GENERATED BY DEFAULT',
      );
    });

    it('an apply killed before the opening: the next plan finishes the reverse mirror and opens', () => {
      const p = reversed((s, d) => {
        s.slots = {}; // the promotion's cleanup ran
        s.publications = {};
        Object.assign(d.catalog.mirrors.m, {
          promotedAt: '2026-12-02T10:00:00Z',
          status: 'Promoted',
          promotion: { state: 'promoted', reverse: 'pending' },
        });
      });
      expect(codes(p)).toEqual([]);
      expect(ids(p)).toContain('create:mirror.m_reverse.slot');
      expect(ids(p).at(-1)).toBe('update:mirror.m.promotion');
      expect(ids(p)).not.toContain('create:mirror.m.promotion');
      const open = p.actions.at(-1) as PromotionOpen;
      expect(open.details.source_sql).toEqual(['DROP TRIGGER IF EXISTS "mirrors_fenced" ON "public"."users"']);
    });

    it('refuses a reverse mirror for a mirror promoted without it (MR184): the old source is no copy any more', () => {
      const p = reversed((s, d) => {
        s.slots = {};
        s.publications = {};
        Object.assign(d.catalog.mirrors.m, {
          promotedAt: '2026-12-02T10:00:00Z',
          status: 'Promoted',
          promotion: { state: 'promoted' },
        });
      });
      expect(codes(p)).toEqual(['MR184']);
      expect(p.actions).toEqual([]);
    });

    it('plans nothing of the reverse mirror while the promotion itself is refused', () => {
      const p = reversed((_s, d) => Object.assign(d.catalog.mirrors.m, { leaseHeld: false }));
      expect(codes(p)).toEqual(['MR170']);
      expect(p.actions.filter((a) => a.mirror === 'm_reverse')).toEqual([]);
    });
  });

  it('is planned alone: other changes of the mirror in the same plan refuse it (MR175)', () => {
    const m = mirror('m', ['public.users', 'public.orders'], { promote: { ...PROMOTE_DEFAULTS } });
    const src = livePeer('prod', [table('public.users'), table('public.orders')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    Object.assign(dst.catalog.mirrors.m, { leaseHeld: true, heartbeatAgeMs: 400 });
    const p = buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 'test' });
    expect(p.diagnostics.map((d) => d.code)).toContain('MR175');
  });

  it('plans nothing for a promoted mirror but the cleanup an interrupted promotion left', () => {
    const p = setup({}, (_s, d) => Object.assign(d.catalog.mirrors.m, { promotedAt: '2026-12-01T00:00:00Z' }));
    const a = p.actions.find((x) => x.kind === 'promotion') as PromotionCreate;
    expect(a.risk).toBe('irreversible'); // it drops the slot
    expect(a.details.fence_sql).toEqual([]);
    expect(p.actions).toHaveLength(1);
    const done = setup({}, (s, d) => {
      Object.assign(d.catalog.mirrors.m, { promotedAt: '2026-12-01T00:00:00Z' });
      s.slots = {};
      s.publications = {};
    });
    expect(done.actions).toEqual([]);
  });

  it('fences every table with a lock that waits out writers, then a trigger enabled ALWAYS naming the new primary', () => {
    const sql = fenceSql('m', 'staging', [
      { source: { schema: 'a b', name: 'T' }, destination: { schema: 'x', name: 'y' } },
    ]);
    expect(sql[0]).toBe('CREATE SCHEMA IF NOT EXISTS "mirrors_fence"');
    expect(sql).toContain('LOCK TABLE "a b"."T" IN EXCLUSIVE MODE');
    expect(sql.find((s) => s.startsWith('CREATE TRIGGER'))).toContain(`"mirrors_fence".reject('m', 'staging')`);
  });
});
