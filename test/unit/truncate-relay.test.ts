/**
 * The truncate relay in the plan and the batch (issue 11): a mirror of a partitioned table publishes the relay and
 * puts its trigger on every leaf; a leaf without it is put right; a relay with no partitioned table left is
 * dropped; a relayed TRUNCATE is a barrier applied as a DELETE of the partition's bound. No database.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import type { Config } from '../../src/config/types.js';
import type { PeerLive } from '../../src/inspect/types.js';
import { tableKey } from '../../src/config/names.js';
import { parseRelayRow } from '../../src/diff/truncate-relay.js';
import { exactStatements, setBasedStatements } from '../../src/worker/batch-sql.js';
import type { Change, TargetTable } from '../../src/worker/changes.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

const plan = (c: Config, peers: PeerLive[]) =>
  buildPlan(c, { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) }, { selected: null, createdBy: 't' });

const leaf = (name: string, relays: string[] = []) => ({ schema: 'public', name, relays });
const events = (leaves = [leaf('events_2026_01'), leaf('events_2026_02')]) =>
  table('public.events', undefined, { kind: 'p', leaves });

const publication = (p: ReturnType<typeof plan>) => {
  const a = p.actions.find((x) => x.kind === 'publication');
  if (a?.kind !== 'publication' || a.op === 'delete') return undefined;
  return a;
};

describe('the truncate relay in the plan', () => {
  it('a new mirror of a partitioned table publishes the relay and puts its trigger on every leaf', () => {
    const m = mirror('m', ['public.events', 'public.users']);
    const p = plan(config([m]), [livePeer('prod', [events(), table('public.users')]), livePeer('staging')]);
    const pub = publication(p)!;
    expect(pub.op).toBe('create');
    expect(pub.reason).toMatch(/^publish 2 tables on peer prod; relay a TRUNCATE of 2 partitions alone/);
    expect(pub.after).toMatchObject({
      tables: ['public.events', 'public.users', 'mirrors.m_truncates'],
      relayed_partitions: ['public.events_2026_01', 'public.events_2026_02'],
    });
    const sql = pub.details.sql;
    const at = (re: RegExp) => sql.findIndex((s) => re.test(s));
    // The relay table exists before the publication names it.
    expect(at(/^CREATE TABLE IF NOT EXISTS "mirrors"\."m_truncates"/)).toBeLessThan(at(/^CREATE PUBLICATION/));
    expect(sql).toContain(
      'CREATE TRIGGER "mirrors_tr_m" AFTER TRUNCATE ON "public"."events_2026_02" FOR EACH STATEMENT EXECUTE FUNCTION "mirrors"."m_truncates"()',
    );
    expect(sql.find((s) => s.startsWith('CREATE OR REPLACE FUNCTION'))).toMatch(
      /SECURITY DEFINER\nSET search_path = pg_catalog, pg_temp/,
    );
    expect(sql).toContain('REVOKE ALL ON FUNCTION "mirrors"."m_truncates"() FROM PUBLIC');
    expect(sql.find((s) => s.startsWith('CREATE PUBLICATION'))).toContain('"mirrors"."m_truncates"');
  });

  it('refuses (MR117) a leaf the source role may not create a trigger on, naming the GRANT', () => {
    const m = mirror('m', ['public.events']);
    const leaves = [leaf('events_2026_01'), { ...leaf('events_2026_02'), canTrigger: false }];
    const p = plan(config([m]), [livePeer('prod', [events(leaves)]), livePeer('staging')]);
    expect(p.diagnostics.map((d) => [d.code, d.hint])).toEqual([
      ['MR117', 'GRANT TRIGGER ON public.events_2026_02 TO mirrors;'],
    ]);
  });

  it('a mirror without partitioned tables has no relay', () => {
    const m = mirror('m', ['public.users']);
    const pub = publication(plan(config([m]), [livePeer('prod', [table('public.users')]), livePeer('staging')]))!;
    expect(pub.after).not.toHaveProperty('relayed_partitions');
    expect(pub.details.sql.join('\n')).not.toMatch(/truncates/);
  });

  function streaming(leaves: ReturnType<typeof leaf>[]) {
    const m = mirror('m', ['public.events']);
    const src = livePeer('prod', [events(leaves)]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.events']);
    src.publications.mirrors_m.tables.push({ schema: 'mirrors', name: 'm_truncates', columns: null, rowFilter: null });
    return { c: config([m]), peers: [src, dst] };
  }

  it('plans nothing when every leaf has the trigger, and adds it to a leaf without it (a partition created since)', () => {
    const relayed = streaming([leaf('events_2026_01', ['mirrors_tr_m']), leaf('events_2026_02', ['mirrors_tr_m'])]);
    expect(plan(relayed.c, relayed.peers).actions).toEqual([]);

    const { c, peers } = streaming([
      leaf('events_2026_01', ['mirrors_tr_m']),
      leaf('events_2026_02', ['mirrors_tr_x']),
    ]);
    const pub = publication(plan(c, peers))!;
    expect(pub.op).toBe('update');
    expect(pub.reason).toMatch(/^relay a TRUNCATE of 1 partition alone \(public\.events_2026_02\)/);
    expect(pub.before).toMatchObject({ relayed_partitions: ['public.events_2026_01'] });
    expect(pub.after).toMatchObject({ relayed_partitions: ['public.events_2026_01', 'public.events_2026_02'] });
    const triggers = pub.details.sql.filter((s) => s.startsWith('CREATE TRIGGER'));
    expect(triggers).toEqual([expect.stringContaining('ON "public"."events_2026_02"')]);
  });

  it('drops the relay once no partitioned table is mirrored', () => {
    const { peers } = streaming([leaf('events_2026_01', ['mirrors_tr_m'])]);
    const m = mirror('m', ['public.events']);
    peers[0].tables[tableKey({ schema: 'public', name: 'events' })] = table('public.events'); // no longer partitioned
    const p = plan(config([m]), peers);
    const pub = publication(p)!;
    expect(pub.op).toBe('update');
    expect(pub.details.sql.slice(-2)).toEqual([
      'DROP FUNCTION IF EXISTS "mirrors"."m_truncates"() CASCADE',
      'DROP TABLE IF EXISTS "mirrors"."m_truncates"',
    ]);
    expect(pub.after).toEqual({ tables: ['public.events'] });
  });
});

describe('a relayed TRUNCATE in the batch', () => {
  const t: TargetTable = {
    schema: 'public',
    name: 'events',
    label: 'public.events',
    columns: ['id', 'day'],
    types: ['bigint', 'date'],
    key: [0],
    snapshotLsn: null,
  };
  const bound = `((day IS NOT NULL) AND (day >= '2026-01-01'::date) AND (day < '2026-02-01'::date))`;
  const changes: Change[] = [
    { op: 'insert', table: t, row: ['1', '2026-01-05'] },
    { op: 'truncate_partition', table: t, partition: 'public.events_2026_01', bound },
    { op: 'insert', table: t, row: ['1', '2026-01-06'] },
  ];

  it('deletes the bound where it happened, as a statement of its own (exact order, never in a multi-statement query)', () => {
    expect(setBasedStatements(changes)).toBeNull();
    expect(exactStatements(changes).map((s) => s.text)).toEqual([
      expect.stringMatching(/^INSERT INTO "public"."events"/),
      `DELETE FROM "public"."events" WHERE ${bound}`,
      expect.stringMatching(/^INSERT INTO "public"."events"/),
    ]);
  });

  it('reads a relay row by its column names', () => {
    const cols = ['id', 'root_schema', 'root_name', 'partition_schema', 'partition_name', 'bound', 'hashed'];
    expect(parseRelayRow(cols, ['7', 'public', 'events', 'public', 'events_2026_01', bound, 'f'])).toEqual({
      root: { schema: 'public', name: 'events' },
      partition: { schema: 'public', name: 'events_2026_01' },
      bound,
      hashed: false,
    });
    expect(
      parseRelayRow(cols, ['7', 'public', 'events', 'public', 'p0', 'satisfies_hash_partition(...)', 't'])?.hashed,
    ).toBe(true);
    expect(parseRelayRow(cols, ['7', null, 'events', 'public', 'p0', 'x', 't'])).toBeNull();
  });
});
