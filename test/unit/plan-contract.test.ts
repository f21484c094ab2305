/**
 * The plan as a typed contract: every action type the diff produces round-trips through the plan file
 * schema; one change per address (merge or throw, never a silent drop); a saved plan matches only the plan
 * the tool would make now.
 */
import { reverseMirror } from '../../src/config/normalize.js';
import { PROMOTE_DEFAULTS } from '../../src/config/types.js';
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import { ActionSet, type NewAction } from '../../src/diff/actions.js';
import { compareWithFresh, parsePlanFile } from '../../src/apply/saved-plan.js';
import { planFileProblems } from '../../src/plan/schema.js';
import {
  ACTION_OPS,
  type Action,
  type Plan,
  type SnapshotDetails,
  type TableAttributes,
  type TableSpec,
} from '../../src/plan/types.js';
import { renderPlanJson } from '../../src/render/json.js';
import { renderPlanText } from '../../src/render/text.js';
import type { MirrorsError } from '../../src/errors.js';
import { applied, col, config, livePeer, mirror, numbered, standbyNamesFacts, table } from '../support/fixtures.js';
import type { PeerLive } from '../../src/inspect/types.js';
import type { Config } from '../../src/config/types.js';

const plan = (c: Config, peers: PeerLive[], selected: string[] | null = null) =>
  buildPlan(c, { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) }, { selected, createdBy: 'test' });

/** Plans that, together, produce every (kind, op) of the union. */
function everyKindOfPlan(): Plan[] {
  const users = table(
    'public.users',
    [
      col('id', 'bigint', { notNull: true }),
      col('mood', 'app.mood', { userType: 'app\u0000mood' }),
      col('ref', 'bigint'),
    ],
    {
      indexes: [
        {
          name: 'users_pkey',
          definition: 'CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)',
          unique: true,
          primary: true,
          columns: ['id'],
        },
        {
          name: 'users_ref',
          definition: 'CREATE INDEX users_ref ON public.users USING btree (ref)',
          unique: false,
          primary: false,
          columns: ['ref'],
        },
      ],
      foreignKeys: [
        {
          name: 'users_ref_fkey',
          definition: 'FOREIGN KEY (ref) REFERENCES public.users(id)',
          references: { schema: 'public', name: 'users' },
        },
      ],
    },
  );
  const hstoreT = table('public.kv', [
    col('id', 'bigint', { notNull: true }),
    col('h', 'public.hstore', { userType: 'public\u0000hstore' }),
  ]);
  const types = {
    'app\u0000mood': { schema: 'app', name: 'mood', kind: 'enum' as const, labels: ['sad', 'ok'] },
    'public\u0000hstore': { schema: 'public', name: 'hstore', kind: 'base' as const, extension: 'hstore' },
  };
  const fresh = plan(config([mirror('m', ['public.users', 'public.kv'])]), [
    livePeer('prod', [users, hstoreT], { types }),
    livePeer('staging'),
  ]);
  // An existing mirror: catalog migration, settings, table add/replace/update/delete, slot replace, publication update.
  const m = mirror('m', ['public.users', 'public.orders', 'public.gone']);
  const src = livePeer('prod', [
    table('public.users'),
    table('public.orders'),
    table('public.gone'),
    table('public.items'),
    table('public.other'),
  ]);
  const dst = livePeer('staging');
  applied(m, src, dst, ['public.users', 'public.orders', 'public.gone']);
  dst.catalog.version = 1;
  src.slots.mirrors_m.walStatus = 'lost';
  dst.catalog.tables[1].partitionKey = 'name';
  dst.catalog.tables[0].source = { schema: 'public', name: 'other' };
  const changed = plan(
    config([{ ...mirror('m', ['public.users', 'public.orders', 'public.items']), max_batch_size: 7 }]),
    [src, dst],
  );
  // A destroyed mirror: slot, publication, mirror deletes.
  const m2 = mirror('old', ['public.users']);
  const src2 = livePeer('prod', [table('public.users')]);
  const dst2 = livePeer('staging');
  applied(m2, src2, dst2, ['public.users']);
  const destroyed = plan(config([]), [src2, dst2]);
  // A new mirror on a destination whose catalog exists: catalog create vs update covered above.
  const catalogNew = plan(config([mirror('n', ['public.users'])]), [
    livePeer('prod', [table('public.users')]),
    livePeer('staging'),
  ]);
  // A Following mirror declared `promote: true`.
  const m3 = mirror('p', ['public.users'], { promote: { ...PROMOTE_DEFAULTS } });
  const src3 = livePeer('prod', [table('public.users')]);
  const dst3 = livePeer('staging');
  applied(m3, src3, dst3, ['public.users']);
  Object.assign(dst3.catalog.mirrors.p, { leaseHeld: true, heartbeatAgeMs: 100 });
  const promoted = plan(config([m3]), [src3, dst3]);
  // The same with a reverse mirror: the promotion's opening is an update.
  const m4 = mirror('r', ['public.users'], { promote: { ...PROMOTE_DEFAULTS, reverse: true } });
  const src4 = livePeer('prod', [table('public.users')]);
  const dst4 = livePeer('staging');
  applied(m4, src4, dst4, ['public.users']);
  Object.assign(dst4.catalog.mirrors.r, { leaseHeld: true, heartbeatAgeMs: 100 });
  const reversed = plan(config([m4, { ...reverseMirror(m4, 'r_reverse'), reverseOf: 'r' }]), [src4, dst4]);
  // A Following sync mirror: the source's synchronous_standby_names names it.
  const m5 = mirror('s', ['public.users'], { mode: 'sync' });
  const src5 = livePeer('prod', [table('public.users')]);
  const dst5 = livePeer('staging');
  applied(m5, src5, dst5, ['public.users']);
  Object.assign(src5, {
    systemIdentifier: '7001',
    standbyNames: standbyNamesFacts({
      commitScope: {
        setting: 'on',
        source: 'default',
        databases: [
          { name: 'app', setting: null },
          { name: 'postgres', setting: null },
        ],
        roles: [{ role: 'batch', database: null, setting: 'off' }],
      },
    }),
  });
  const synced = plan(config([m5]), [src5, dst5]);
  // A worker stopped at a column added on the source: the columns update it recorded.
  const m6 = mirror('c', ['public.users']);
  const cols = numbered([col('id', 'bigint', { notNull: true }), col('name', 'text')]);
  const src6 = livePeer('prod', [table('public.users', cols)]);
  const dst6 = livePeer('staging');
  applied(m6, src6, dst6, ['public.users']);
  const k = 'public\u0000users';
  dst6.tables[k] = { ...dst6.tables[k], columns: cols.map((c) => ({ ...c })), hasGuard: true, guardState: 'enabled' };
  src6.tables[k] = { ...src6.tables[k], columns: [...cols, col('note', 'text', { attnum: 3 })] };
  dst6.catalog.tables[0].pendingSchemaChange = {
    detected_at: '2026-12-02T08:00:00.000Z',
    lsn: '0/2000',
    steps: [
      {
        change: 'add',
        column: 'note',
        type: 'text',
        sql: ['ALTER TABLE "public"."users" ADD COLUMN "note" text'],
        summary: 'add column note text; rows already there read NULL, as on the source',
      },
    ],
    copy: null,
    kept: [],
  };
  const schemaChanged = plan(config([m6]), [src6, dst6]);
  return [fresh, changed, destroyed, catalogNew, promoted, reversed, synced, schemaChanged];
}

describe('the plan file schema', () => {
  const plans = everyKindOfPlan();
  const actions = plans.flatMap((p) => p.actions);

  it('the fixtures produce every (kind, op) of the action union', () => {
    const seen = new Set(actions.map((a) => `${a.kind}:${a.op}`));
    const all = Object.entries(ACTION_OPS).flatMap(([k, ops]) => ops.map((o) => `${k}:${o}`));
    expect([...seen].sort()).toEqual(all.sort());
  });

  it('every action type round-trips: a saved plan validates and parses back to the same plan', () => {
    for (const p of plans) {
      expect(planFileProblems(JSON.parse(renderPlanJson(p)))).toEqual([]);
      expect(parsePlanFile(renderPlanJson(p), 'plan.json', 'test')).toEqual(JSON.parse(JSON.stringify(p)));
    }
  });

  it('refuses a plan whose details carry a key the action type does not have', () => {
    const p = JSON.parse(renderPlanJson(plans[0]));
    p.actions.find((a: Action) => a.kind === 'table').details.extra_sql = ['DROP TABLE x'];
    expect(planFileProblems(p).join('\n')).toMatch(/details.*extra_sql/);
  });

  it('refuses a (kind, op) pair outside the union and a wrong details shape', () => {
    const p = JSON.parse(renderPlanJson(plans[0]));
    p.actions[0].op = 'replace';
    expect(planFileProblems(p)).not.toEqual([]);
    const q = JSON.parse(renderPlanJson(plans[0]));
    q.actions.find((a: Action) => a.kind === 'snapshot').details.parallelism.max_workers = 'many';
    expect(planFileProblems(q)).not.toEqual([]);
  });

  it('refuses a truncated file, a foreign JSON file with an actions list, and format 1', () => {
    const text = renderPlanJson(plans[0]);
    expect(() => parsePlanFile(text.slice(0, text.length / 2), 'p.json', 't')).toThrow(/invalid JSON/);
    expect(() => parsePlanFile(JSON.stringify({ actions: [{ kind: 'slot', op: 'delete' }] }), 'p.json', 't')).toThrow(
      /not a mirrors plan file/,
    );
    const v1 = { ...JSON.parse(text), format_version: 1 };
    expect(() => parsePlanFile(JSON.stringify(v1), 'p.json', 't')).toThrow(/format version 1.*reads version 2/);
    try {
      parsePlanFile(JSON.stringify(v1), 'p.json', 't');
    } catch (e) {
      expect((e as MirrorsError).hint).toMatch(/re-run mirrors plan/);
    }
  });
});

describe('one change per address', () => {
  const spec: TableSpec = {
    source: { schema: 'public', name: 't' },
    destination: { schema: 'public', name: 't' },
    columns: [],
    primary_key: [],
    exclude_columns: [],
    partition_key: 'id',
    estimated_rows: '0',
    size_bytes: '0',
  };
  const tableUpdate = (reason: string, before: TableAttributes, after: TableAttributes, sql: string[]): NewAction => ({
    kind: 'table',
    op: 'update',
    address: 'mirror.m.table.public.t',
    peer: 'staging',
    mirror: 'm',
    reason_code: 'table_changed',
    risk: 'safe',
    depends_on: [],
    reason,
    before,
    after,
    details: { spec, sql },
  });
  const typeCreate = (depends_on: string[]): NewAction => ({
    kind: 'type',
    op: 'create',
    address: 'peer.s.type.public.mood',
    peer: 's',
    mirror: null,
    reason: 'enum',
    reason_code: 'type_missing',
    risk: 'safe',
    before: null,
    after: { kind: 'enum' },
    depends_on,
    details: { sql: ['CREATE TYPE'] },
  });
  const slotCreate = (name: string): NewAction => ({
    kind: 'slot',
    op: 'create',
    address: 'mirror.m.slot',
    peer: 'p',
    mirror: 'm',
    reason: 'r',
    reason_code: 'slot_missing',
    risk: 'safe',
    before: null,
    after: { name: 'mirrors_m', plugin: 'pgoutput' },
    depends_on: [],
    details: { name, create_command: 'CREATE_REPLICATION_SLOT', tables: 'copy' },
  });

  it('merges two updates of one object: both attributes, both statements, one action', () => {
    const set = new ActionSet();
    set.add(tableUpdate('partition_key changed', { partition_key: null }, { partition_key: 'id' }, []));
    set.add(tableUpdate('add the guard', { read_only: false }, { read_only: true }, ['CREATE TRIGGER g']));
    expect(set.list).toHaveLength(1);
    const [a] = set.list;
    expect(a.before).toEqual({ partition_key: null, read_only: false });
    expect(a.after).toEqual({ partition_key: 'id', read_only: true });
    expect((a.details as { sql: string[] }).sql).toEqual(['CREATE TRIGGER g']);
    expect(a.reason).toBe('partition_key changed; add the guard');
  });

  it('keeps one action for identical adds (a type two tables need) and joins their dependencies', () => {
    const set = new ActionSet();
    set.add(typeCreate(['a']));
    set.add(typeCreate(['b']));
    expect(set.list).toHaveLength(1);
    expect(set.list[0].depends_on).toEqual(['a', 'b']);
  });

  it('throws on a real conflict instead of dropping one of the changes', () => {
    const set = new ActionSet();
    set.add(tableUpdate('x', { partition_key: null }, { partition_key: 'id' }, []));
    expect(() => set.add(tableUpdate('y', { partition_key: null }, { partition_key: 'other' }, []))).toThrow(
      /two changes planned for mirror\.m\.table\.public\.t/,
    );
    set.add(slotCreate('mirrors_m'));
    expect(() => set.add(slotCreate('mirrors_x'))).toThrow(/different change/);
  });

  it('a table whose partition_key changed and whose guard is missing gets both in one update, so one apply converges', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    dst.tables['public\u0000users'].hasGuard = false;
    dst.catalog.tables[0].partitionKey = null;
    const m2 = mirror('m', ['public.users']);
    m2.tables[0].partition_key = 'id';
    const p = plan(config([m2]), [src, dst]);
    expect(p.actions.map((a) => a.id)).toEqual(['update:mirror.m.table.public.users']);
    const a = p.actions[0];
    expect(a.after).toEqual({ partition_key: 'id', read_only: true });
    expect((a.details as { sql: string[] }).sql[0]).toMatch(/^CREATE TRIGGER "mirrors_read_only"/);
    // After applying it (the guard exists, the catalog has the new key) nothing is left to do.
    dst.tables['public\u0000users'].hasGuard = true;
    dst.catalog.tables[0].partitionKey = 'id';
    expect(plan(config([m2]), [src, dst]).actions).toEqual([]);
  });
});

describe('a saved plan runs only what would be planned now', () => {
  const made = () => {
    const src = livePeer('prod', [table('public.users'), table('public.orders')]);
    const dst = livePeer('staging');
    return { src, dst, p: plan(config([mirror('m', ['public.users', 'public.orders'])]), [src, dst]) };
  };

  it('matches a fresh plan whose only differences are row and size estimates', () => {
    const { src, dst, p } = made();
    src.tables['public\u0000users'].estimatedRows = '123456';
    src.tables['public\u0000users'].sizeBytes = '99999999';
    const fresh = plan(config([mirror('m', ['public.users', 'public.orders'])]), [src, dst]);
    expect(compareWithFresh(p, fresh)).toEqual({ same: true });
  });

  it('is refused when its SQL was edited, an action was removed, or the databases moved on', () => {
    const { src, dst, p } = made();
    const edited = JSON.parse(JSON.stringify(p)) as Plan;
    const t = edited.actions.find((a) => a.kind === 'table')!;
    (t.details as { sql: string[] }).sql[0] = 'CREATE TABLE public.evil (x int)';
    expect(compareWithFresh(edited, p)).toEqual({ same: false, why: `${t.id} differs from what a plan made now says` });
    const shorter = { ...p, actions: p.actions.slice(0, -1) };
    expect(compareWithFresh(shorter, p).same).toBe(false);
    src.tables['public\u0000orders'].columns.push(col('added'));
    const fresh = plan(config([mirror('m', ['public.users', 'public.orders'])]), [src, dst]);
    expect(compareWithFresh(p, fresh).same).toBe(false);
  });
});

describe('consent and ownership in the plan', () => {
  const withMirror = (project: string, over: Partial<ReturnType<typeof mirror>> = {}) => {
    const m = mirror('theirs', ['public.users'], over);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    dst.catalog.mirrors.theirs.project = project;
    return { src, dst };
  };

  it("never plans to destroy another project's mirror: it is a note", () => {
    const { src, dst } = withMirror('team_b');
    const p = plan({ ...config([]), project: 'team_a' }, [src, dst]);
    expect(p.actions).toEqual([]);
    expect(p.diagnostics.map((d) => `${d.code} ${d.severity}`)).toEqual(['MR146 note']);
  });

  it('refuses to manage a mirror of the same name recorded by another project (MR145)', () => {
    const { src, dst } = withMirror('team_b');
    const p = plan({ ...config([mirror('theirs', ['public.users'])]), project: 'team_a' }, [src, dst]);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['MR145']);
    expect(p.actions).toEqual([]);
  });

  it('prevent_destroy blocks a plan that would destroy the mirror (MR136)', () => {
    const { src, dst } = withMirror('default', { prevent_destroy: true });
    const p = plan(config([]), [src, dst]);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['MR136']);
    expect(p.actions).toEqual([]);
  });

  it('a file without a project destroys no mirror (MR147); with one, the destroy is planned and irreversible', () => {
    const { src, dst } = withMirror('default');
    const p = plan({ ...config([]), projectDeclared: false }, [src, dst]);
    expect(p.diagnostics.map((d) => `${d.code} ${d.severity}`)).toEqual(['MR147 error']);
    expect(p.actions).toEqual([]);
    const q = plan(config([]), [src, dst]);
    expect(q.diagnostics).toEqual([]);
    expect(q.actions.filter((a) => a.risk === 'irreversible').map((a) => a.id)).toEqual([
      'delete:mirror.theirs.slot',
      'delete:mirror.theirs',
    ]);
  });

  it('--fail-on irreversible turns each irreversible action into an error (MR137); disruptive includes them', () => {
    const { src, dst } = withMirror('default');
    const live = { peers: { prod: src, staging: dst } };
    const p = buildPlan(config([]), live, { selected: null, createdBy: 't', failOn: 'irreversible' });
    expect(p.diagnostics.filter((d) => d.code === 'MR137').map((d) => d.address)).toEqual([
      'mirror.theirs',
      'mirror.theirs.slot',
    ]);
    const q = buildPlan(config([]), live, { selected: null, createdBy: 't', failOn: 'disruptive' });
    expect(q.diagnostics.filter((d) => d.code === 'MR137')).toHaveLength(2);
  });
});

describe('rendering what changes', () => {
  it('shows each changed attribute before -> after, and long lists as a unified diff', () => {
    const m = mirror('m', ['public.a', 'public.b', 'public.c', 'public.d']);
    const src = livePeer(
      'prod',
      ['a', 'b', 'c', 'd', 'e'].map((n) => table(`public.${n}`)),
    );
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.a', 'public.b', 'public.c', 'public.d']);
    const p = plan(
      config([{ ...mirror('m', ['public.a', 'public.b', 'public.c', 'public.d', 'public.e']), max_batch_size: 50 }]),
      [src, dst],
    );
    const text = renderPlanText(p);
    expect(text).toContain('max_batch_size: 1000 -> 50');
    expect(text).toMatch(/tables:\n\s+@@ -2,3 \+2,4 @@\n(.*\n)*\s+\+ public\.e\n/);
  });
});

describe('settings recorded by an older version', () => {
  it('a setting the catalog has no value for counts as its default: no update for prevent_destroy: false', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    delete dst.catalog.mirrors.m.settings.prevent_destroy;
    expect(plan(config([m]), [src, dst]).actions).toEqual([]);
    const p = plan(config([{ ...m, prevent_destroy: true }]), [src, dst]);
    expect(p.actions.map((a) => [a.id, a.before, a.after])).toEqual([
      ['update:mirror.m', { prevent_destroy: false }, { prevent_destroy: true }],
    ]);
  });
});

describe('the plan schema and the settings table', () => {
  it('describes exactly the mirror settings the settings table defines', async () => {
    const { readFileSync } = await import('node:fs');
    const schema = JSON.parse(readFileSync(new URL('../../schemas/plan.schema.json', import.meta.url), 'utf8'));
    const { SETTING_KEYS } = await import('../../src/config/settings.js');
    expect(Object.keys(schema.$defs.settings.properties).sort()).toEqual([...SETTING_KEYS].sort());
    expect([...schema.$defs.settings.required].sort()).toEqual([...SETTING_KEYS].sort());
  });
});

describe('a full resync that stopped part-way', () => {
  it('copies again every table whose snapshot is older than the current slot, not only the unfinished one', () => {
    const m = mirror('m', ['public.a', 'public.b', 'public.c']);
    const src = livePeer('prod', [table('public.a'), table('public.b'), table('public.c')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.a', 'public.b', 'public.c']);
    // A new slot at 0/5000; a was copied for it, b was being copied, c was never reached.
    dst.catalog.mirrors.m.consistentLsn = '0/5000';
    dst.catalog.mirrors.m.phase = 'snapshot';
    dst.catalog.tables[0].snapshotLsn = '0/5000';
    dst.catalog.tables[1].state = 'copying';
    dst.catalog.tables[2].snapshotLsn = '0/1000';
    const p = plan(config([m]), [src, dst]);
    const snap = p.actions.find((a) => a.kind === 'snapshot');
    expect((snap!.details as SnapshotDetails).tables.map((t) => t.destination.name)).toEqual(['b', 'c']);
  });
});

describe('catalogs and destinations a plan cannot use', () => {
  it('refuses a catalog migrated by a newer mirrors (MR148), once per destination', () => {
    const dst = livePeer('staging', [], { catalog: { version: 99, mirrors: {}, tables: [] } });
    const p = plan(config([mirror('a', ['public.users']), mirror('b', ['public.users'], {})]), [
      livePeer('prod', [table('public.users')]),
      dst,
    ]);
    expect(p.diagnostics.filter((d) => d.code === 'MR148').map((d) => d.address)).toEqual(['peer.staging.catalog']);
  });

  it('refuses a mirror whose destination changed (MR149) instead of creating a second one', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const old = livePeer('staging');
    applied(m, src, old, ['public.users']);
    const c = config([{ ...m, destination: 'other' }]);
    c.peers.other = { ...c.peers.staging, name: 'other', port: 5434 };
    const p = plan(c, [src, old, livePeer('other')]);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['MR149']);
    expect(p.actions).toEqual([]);
  });
});

describe('the committed plan schema', () => {
  it('is what tools/gen-plan-schema.mjs writes (edit the generator, not the JSON)', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const out = join(mkdtempSync(join(tmpdir(), 'plan-schema-')), 'plan.schema.json');
    execFileSync(process.execPath, [new URL('../../tools/gen-plan-schema.mjs', import.meta.url).pathname, out]);
    const committed = readFileSync(new URL('../../schemas/plan.schema.json', import.meta.url), 'utf8');
    expect(readFileSync(out, 'utf8')).toBe(committed);
  });
});
