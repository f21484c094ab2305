import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import { planExitCode } from '../../src/cli/plan.js';
import { renderVerifyText } from '../../src/render/verify.js';
import { overallOutcome, verifyExitCode, type VerifyReport } from '../../src/verify/report.js';
import { type MirrorResult, refuseUnverifiable } from '../../src/verify/run.js';
import type { MirrorState } from '../../src/catalog/worker-sql.js';
import type { MirrorsError } from '../../src/errors.js';
import {
  type HashedTable,
  diffRows,
  keyRowsSql,
  rangeDigestSql,
  samplePercent,
  settle,
  showKey,
  sourceChunkSql,
} from '../../src/verify/sql.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

const T: HashedTable = {
  dest: { schema: 'public', name: 'Orders"x' },
  source: { schema: 'sales', name: 'orders' },
  columns: ['id', 'region', 'total'],
  destTypes: ['bigint', 'text', 'numeric'],
  sourceTypes: ['integer', 'text', 'numeric(10,2)'],
  key: [0, 1],
  hash: 'hashtext',
};

describe('verify: chunk statements', () => {
  it('cuts a chunk on the source by key order and reads its last key as text', () => {
    const q = sourceChunkSql(T, [{ op: '>', key: ['7', 'eu'] }], 500);
    expect(q.text).toContain('FROM "sales"."orders" AS s WHERE (s."id", s."region") > ($1::integer, $2::text)');
    expect(q.text).toContain('ORDER BY s."id", s."region" LIMIT 500');
    expect(q.text).toContain('hashtextextended(ROW(s."id", s."region", s."total")::text COLLATE "C", 0) AS mirrors_h');
    // Servers of another byte order compute another hashtextextended: md5 then.
    expect(sourceChunkSql({ ...T, hash: 'md5' }, [], 5).text).toContain(
      `('x' || left(md5(ROW(s."id", s."region", s."total")::text), 16))::bit(64)::bigint AS mirrors_h`,
    );
    expect(q.text).toContain(
      'json_build_array(c."id"::text, c."region"::text)::text FROM c ORDER BY c."id" DESC, c."region" DESC LIMIT 1',
    );
    expect(q.values).toEqual(['7', 'eu']);
  });

  it("counts the same range on the destination with the destination's own types, quoting hostile names", () => {
    const q = rangeDigestSql(T, 'dest', [
      { op: '>', key: ['7', 'eu'] },
      { op: '<=', key: ['9', null] },
    ]);
    expect(q.text).toContain(
      'FROM "public"."Orders""x" AS x WHERE (x."id", x."region") > ($1::bigint, $2::text) AND (x."id", x."region") <= ($3::bigint, $4::text)',
    );
    expect(q.values).toEqual(['7', 'eu', '9', null]);
    expect(rangeDigestSql(T, 'dest', []).text).not.toContain('WHERE');
  });

  it('looks keys up by equality on either side', () => {
    const q = keyRowsSql(T, 'source', [
      ['1', 'eu'],
      ['2', null],
    ]);
    expect(q.text).toContain(
      'unnest($1::text[], $2::text[]) AS u("id", "region") WHERE x."id" = u."id"::integer AND x."region" = u."region"::text',
    );
    expect(q.values).toEqual([
      ['1', '2'],
      ['eu', null],
    ]);
  });

  it('reads as many pages as the sample needs, never more than all of them', () => {
    // 1% of 1,000,000 rows in chunks of 10,000: one chunk, so one page of 10,000.
    expect(samplePercent(0.01, 10_000, 1_000_000, 10_000)).toBeCloseTo(0.01);
    expect(samplePercent(0.5, 10_000, 1_000_000, 10_000)).toBeCloseTo(0.5);
    expect(samplePercent(0.01, 0, 0, 10_000)).toBe(100);
    expect(samplePercent(1, 10, 1000, 10)).toBe(100);
  });
});

describe('verify: comparing rows', () => {
  const k = (...v: (string | null)[]) => JSON.stringify(v);
  it('names rows missing on the destination, extra there, and changed', () => {
    const d = diffRows(
      [
        { k: k('1'), h: 'a' },
        { k: k('2'), h: 'b' },
        { k: k('3'), h: 'c' },
      ],
      [
        { k: k('2'), h: 'b' },
        { k: k('3'), h: 'X' },
        { k: k('4'), h: 'd' },
      ],
    );
    expect(d).toEqual({ missing: [k('1')], extra: [k('4')], changed: [k('3')] });
  });

  it('a key the destination orders into another range is not a difference; found there changed, it is', () => {
    const diff = { missing: [k('a'), k('b'), k('c')], extra: [k('z'), k('y')], changed: [] };
    const out = settle(
      diff,
      {
        source: new Map([
          [k('a'), 'ha'],
          [k('b'), 'hb'],
          [k('c'), 'hc'],
        ]),
        dest: new Map([
          [k('z'), 'hz'],
          [k('y'), 'hy'],
        ]),
      },
      {
        missingOnDest: [
          { k: k('a'), h: 'ha' },
          { k: k('b'), h: 'other' },
        ],
        extraOnSource: [{ k: k('y'), h: 'hy' }],
      },
    );
    expect(out).toEqual({ missing: [k('c')], extra: [k('z')], changed: [k('b')] });
  });

  it('shows a key with its column names', () => {
    expect(showKey({ ...T, key: [0] }, k('17'))).toBe('id 17');
    expect(showKey(T, k('1', null))).toBe('(id, region) (1, NULL)');
  });
});

const result = (over: Partial<MirrorResult> = {}): MirrorResult => ({
  mirror: 'app',
  outcome: 'equal',
  run: '3',
  sourceLsn: '0/3000',
  destinationLsn: '0/2FF0',
  armMs: 40,
  holdMs: 2.5,
  sample: 1,
  seconds: 1.2,
  tables: [],
  ...over,
});

describe('verify: report and exit code', () => {
  it('exits 0 equal, 2 when a table differs, 1 when a mirror could not be compared', () => {
    const report = (mirrors: VerifyReport['mirrors']): VerifyReport => ({
      format_version: 1,
      created_by: 'test',
      generated_at: '2026-12-02T00:00:00Z',
      config_file: 'mirrors.yaml',
      outcome: overallOutcome(mirrors),
      mirrors,
    });
    const err = { mirror: 'b', outcome: 'error' as const, error: { code: 'VERIFY_FAILED', message: 'x' } };
    expect(verifyExitCode(report([result()]))).toBe(0);
    expect(verifyExitCode(report([result(), result({ outcome: 'different' })]))).toBe(2);
    expect(verifyExitCode(report([result({ outcome: 'different' }), err]))).toBe(1);
  });

  it('prints the differing keys, the leaf counts that differ and the resync that repairs the table', () => {
    const list = (count: number, keys: string[]) => ({ count, keys });
    const text = renderVerifyText({
      format_version: 1,
      created_by: 'test',
      generated_at: '2026-12-02T00:00:00Z',
      config_file: 'mirrors.yaml',
      outcome: 'different',
      mirrors: [
        result({
          outcome: 'different',
          tables: [
            {
              address: 'mirror.app.table.public.ev',
              source: '"public"."ev"',
              destination: 'public.ev',
              outcome: 'different',
              rows: { source: 10, destination: 25 },
              chunks: { compared: 3, differing: 2, drilled: 2 },
              missing: list(0, []),
              extra: list(15, ['id 1', 'id 2']),
              changed: list(0, []),
              partitions: [
                { partition: 'ev_01', source: 10, destination: 10 },
                { partition: 'ev_02', source: 0, destination: 15 },
              ],
            },
          ],
        }),
      ],
    });
    expect(text).toContain('≠ mirror app: different, 1 table, 10 source rows');
    expect(text).toContain('the worker applied nothing for 2.5 ms at that point (and 40 ms while');
    expect(text).toContain('extra on the destination (15): id 1, id 2 and 13 more');
    expect(text).toContain('partition ev_02: source 0 rows, destination 15');
    expect(text).not.toContain('partition ev_01');
    expect(text).toContain('fix: mirrors apply --replace mirror.app.table.public.ev');
  });
});

describe('verify: the plan carries what the last run found (MR165)', () => {
  const setup = () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    const t = dst.catalog.tables[0];
    t.lastVerify = {
      run: '7',
      finishedAt: '2026-12-02T10:00:00.000Z',
      targetLsn: '0/5000',
      outcome: 'different',
      missing: 1,
      extra: 0,
      changed: 2,
    };
    const plan = () =>
      buildPlan(config([m]), { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 'test' });
    return { t, plan };
  };

  it('a table the last verify found different is a warning with the resync, and a scheduled plan exits 2', () => {
    const { plan } = setup();
    const p = plan();
    const d = p.diagnostics.filter((x) => x.code === 'MR165');
    expect(d).toHaveLength(1);
    expect(d[0].message).toContain(
      'that compared it (run 7, 2026-12-02T10:00:00.000Z) found public.users different from its source: rows 1 missing, 2 changed',
    );
    expect(d[0].hint).toContain('mirrors apply --replace mirror.m.table.public.users');
    expect(planExitCode(p, true)).toBe(2);
    expect(planExitCode(p, false)).toBe(0);
  });

  it('not once the table was copied from a later snapshot, or merged after the run, or found equal', () => {
    for (const change of [
      (t: ReturnType<typeof setup>['t']) => (t.snapshotLsn = '0/6000'),
      (t: ReturnType<typeof setup>['t']) => (t.lastMergeAt = '2026-12-02T11:00:00.000Z'),
      (t: ReturnType<typeof setup>['t']) => (t.lastVerify!.outcome = 'equal'),
    ]) {
      const { t, plan } = setup();
      change(t);
      expect(plan().diagnostics.map((x) => x.code)).not.toContain('MR165');
    }
  });
});

describe('verify: mirrors it refuses, with the reason and the fix', () => {
  const state = (over: Partial<MirrorState> = {}): MirrorState => ({
    name: 'm',
    phase: 'ready',
    paused: false,
    lastAppliedLsn: '0/1',
    promoted: false,
    sourceIdentity: null,
    bytesDone: '0',
    bytesTotal: '0',
    slot: 'mirrors_m',
    publication: 'mirrors_m',
    tables: [],
    ...over,
  });
  const refused = (m: ReturnType<typeof mirror>, s: MirrorState | null) => {
    try {
      refuseUnverifiable(m, s);
      return null;
    } catch (err) {
      return err as MirrorsError;
    }
  };

  it('a streaming async mirror is verified', () => {
    expect(refused(mirror('m', ['public.t']), state())).toBeNull();
  });

  it('mode: sync (holding its worker would hold the source’s commits), paused, promoted, not applied, still copying', () => {
    const cases: [ReturnType<typeof mirror>, MirrorState | null, RegExp][] = [
      [mirror('m', ['public.t'], { mode: 'sync' }), state(), /mode: sync is not supported yet/],
      [mirror('m', ['public.t']), state({ paused: true }), /it is paused/],
      [mirror('m', ['public.t']), state({ promoted: true }), /it is promoted/],
      [mirror('m', ['public.t']), null, /not applied on its destination/],
      [mirror('m', ['public.t']), state({ phase: 'snapshot' }), /snapshot is not finished/],
    ];
    for (const [m, s, message] of cases) {
      const e = refused(m, s);
      expect(e?.code).toBe('VERIFY_FAILED');
      expect(e?.message).toMatch(message);
      expect(e?.hint).toBeTruthy();
    }
  });
});
