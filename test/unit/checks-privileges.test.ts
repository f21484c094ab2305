/**
 * The privilege and publishability preflight (diff/checks.ts) on constructed Live values: each check fires
 * for the action that needs the privilege, names the exact grant, and stays quiet for a superuser.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import type { Plan } from '../../src/plan/types.js';
import type { LiveSchema, PeerLive } from '../../src/inspect/types.js';
import { CATALOG_VERSION } from '../../src/catalog/migrations.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

const plan = (m: ReturnType<typeof mirror>, src: PeerLive, dst: PeerLive, c = config([m])) =>
  buildPlan(c, { peers: { prod: src, staging: dst } }, { selected: null, createdBy: 'test' });
const codes = (p: Plan) => p.diagnostics.map((d) => d.code);
const find = (p: Plan, code: string) => p.diagnostics.filter((d) => d.code === code);
const schema = (name: string, over: Partial<LiveSchema> = {}): LiveSchema => ({
  name,
  owner: 'postgres',
  owned: false,
  usage: true,
  create: true,
  ...over,
});
const limited = {
  name: 'lim',
  superuser: false,
  replication: true,
  canCreateInDatabase: false,
  canSetReplicationRole: true,
};

describe('source privileges', () => {
  const notOwned = (q: string) => table(q, undefined, { owned: false, owner: 'app_owner' });

  it('MR109 and MR117: a new publication needs CREATE on the database and ownership of every table, grouped by owner', () => {
    const src = livePeer(
      'prod',
      [notOwned('public.a'), notOwned('public.b'), table('public.c', undefined, { owned: true })],
      { role: limited },
    );
    const p = plan(mirror('m', ['public.a', 'public.b', 'public.c']), src, livePeer('staging'));
    expect(codes(p)).toEqual(['MR109', 'MR117']);
    expect(find(p, 'MR109')[0].hint).toBe('GRANT CREATE ON DATABASE app TO lim;');
    expect(find(p, 'MR117')[0].address).toBe('mirror.m.publication');
    expect(find(p, 'MR117')[0].message).toContain('public.a, public.b (owner app_owner)');
    expect(find(p, 'MR117')[0].hint).toBe(
      'ALTER TABLE public.a OWNER TO lim; ALTER TABLE public.b OWNER TO lim; or GRANT app_owner TO lim; (membership in the owner role counts as ownership)',
    );
  });

  it('MR117 never suggests membership in a superuser owner role', () => {
    const src = livePeer(
      'prod',
      [table('public.a', undefined, { owned: false, owner: 'postgres', ownerIsSuperuser: true })],
      { role: { ...limited, canCreateInDatabase: true } },
    );
    expect(find(plan(mirror('m', ['public.a']), src, livePeer('staging')), 'MR117')[0].hint).toBe(
      'ALTER TABLE public.a OWNER TO lim;',
    );
  });

  it('a superuser source passes however the tables are owned', () => {
    const src = livePeer('prod', [notOwned('public.a')], { role: { ...limited, superuser: true } });
    expect(codes(plan(mirror('m', ['public.a']), src, livePeer('staging')))).toEqual([]);
  });

  it('MR117: altering the table list of an existing publication needs ownership of every listed table and of the publication', () => {
    const m = mirror('m', ['public.a']);
    const src = livePeer('prod', [table('public.a'), notOwned('public.b')], {
      role: { ...limited, canCreateInDatabase: true },
    });
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.a']);
    src.publications.mirrors_m.owned = false;
    src.publications.mirrors_m.owner = 'postgres';
    const p = plan(mirror('m', ['public.a', 'public.b']), src, dst);
    const msgs = find(p, 'MR117').map((d) => d.hint);
    expect(msgs).toContain('ALTER PUBLICATION mirrors_m OWNER TO lim; (as postgres or a superuser)');
    expect(msgs.some((h) => h.startsWith('ALTER TABLE public.b OWNER TO lim;'))).toBe(true);
    expect(codes(p)).not.toContain('MR109');
  });

  it('MR116: no USAGE on the schema, and partitions the role cannot read', () => {
    const src = livePeer(
      'prod',
      [
        table('s.t', undefined, {
          leafProblems: [{ schema: 's', name: 't_1', kind: 'r', persistence: 'p', canSelect: false }],
        }),
      ],
      {
        schemas: { s: schema('s', { usage: false }) },
      },
    );
    const p = plan(mirror('m', ['s.t']), src, livePeer('staging'));
    expect(find(p, 'MR116').map((d) => d.hint)).toEqual([
      'GRANT USAGE ON SCHEMA s TO mirrors;',
      'GRANT SELECT ON s.t_1 TO mirrors;',
    ]);
  });

  it('MR118: an UNLOGGED table or partition; MR119: a foreign partition', () => {
    const src = livePeer('prod', [
      table('public.u', undefined, { persistence: 'u' }),
      table('public.p', undefined, {
        kind: 'p',
        leafProblems: [
          { schema: 'public', name: 'p_u', kind: 'r', persistence: 'u', canSelect: true },
          { schema: 'public', name: 'p_f', kind: 'f', persistence: 'p', canSelect: true },
        ],
      }),
    ]);
    const p = plan(mirror('m', ['public.u', 'public.p']), src, livePeer('staging'));
    expect(codes(p)).toEqual(['MR118', 'MR118', 'MR119']);
    expect(find(p, 'MR118').map((d) => d.hint)).toContain(
      'ALTER TABLE public.u SET LOGGED; (rewrites the table), or remove it from the mirror',
    );
  });

  it('MR119 instead of MR110 for a view, a materialized view, a foreign table and a partition', () => {
    const src = livePeer('prod', [], {
      otherRelations: {
        'public\u0000v': { schema: 'public', name: 'v', kind: 'v' },
        'public\u0000mv': { schema: 'public', name: 'mv', kind: 'm' },
        'public\u0000f': { schema: 'public', name: 'f', kind: 'f' },
        'public\u0000ev_1': {
          schema: 'public',
          name: 'ev_1',
          kind: 'r',
          partitionOf: { schema: 'public', name: 'ev' },
        },
      },
    });
    const p = plan(mirror('m', ['public.v', 'public.mv', 'public.f', 'public.ev_1']), src, livePeer('staging'));
    expect(codes(p)).toEqual(['MR119', 'MR119', 'MR119', 'MR119']);
  });
});

describe('destination privileges', () => {
  const src = () => livePeer('prod', [table('public.users')]);

  it('MR126: session_replication_role, with the 15+ grant or the superuser-only answer on 14', () => {
    const d15 = livePeer('staging', [], {
      role: { ...limited, canCreateInDatabase: true, canSetReplicationRole: false },
    });
    expect(find(plan(mirror('m', ['public.users']), src(), d15), 'MR126')[0].hint).toBe(
      'GRANT SET ON PARAMETER session_replication_role TO lim;',
    );
    const d14 = livePeer('staging', [], {
      serverVersionNum: 140011,
      serverVersion: '14.11',
      role: { ...limited, canCreateInDatabase: true, canSetReplicationRole: false },
    });
    expect(find(plan(mirror('m', ['public.users']), src(), d14), 'MR126')[0].hint).toMatch(
      /^on PostgreSQL 14\.11 only a superuser may set it: ALTER ROLE lim SUPERUSER;/,
    );
  });

  it('MR125: creating a table in an existing schema needs USAGE and CREATE on it', () => {
    const dst = livePeer('staging', [], {
      role: { ...limited, canCreateInDatabase: true },
      schemas: { public: schema('public', { create: false }) },
    });
    const p = plan(mirror('m', ['public.users']), src(), dst);
    expect(codes(p)).toEqual(['MR125']);
    expect(find(p, 'MR125')[0].hint).toBe('GRANT CREATE ON SCHEMA public TO lim;');
  });

  it('MR107: with the catalog in place, a table in a schema the destination lacks needs CREATE on the database', () => {
    const dst = livePeer('staging', [], {
      role: limited,
      catalog: { version: CATALOG_VERSION, mirrors: {}, tables: [] },
      schemas: { public: schema('public'), mirrors: schema('mirrors', { owned: true }) },
    });
    const p = plan(
      mirror('m', ['app.users', 'public.orders'], {}),
      livePeer('prod', [table('app.users'), table('public.orders')]),
      dst,
    );
    expect(codes(p)).toEqual(['MR107']);
    expect(find(p, 'MR107')[0].message).toContain('cannot create schema app in database app');
    expect(find(p, 'MR107')[0].address).toBe('peer.staging');
    // Existing schemas need no CREATE on the database (a schema action is planned only for a missing one).
    expect(codes(plan(mirror('m', ['public.orders'], {}), livePeer('prod', [table('public.orders')]), dst))).toEqual(
      [],
    );
  });

  it('MR107 once per peer when the catalog must be created too', () => {
    const dst = livePeer('staging', [], { role: limited, schemas: { public: schema('public') } });
    expect(codes(plan(mirror('m', ['public.users']), src(), dst))).toEqual(['MR107']);
  });

  it('MR127: an adopted destination table lists only the missing privileges; an existing guard needs no TRIGGER', () => {
    const dst = livePeer(
      'staging',
      [table('public.users', undefined, { missingPrivileges: ['SELECT', 'TRUNCATE', 'TRIGGER'] })],
      { role: { ...limited, canCreateInDatabase: true } },
    );
    expect(find(plan(mirror('m', ['public.users']), src(), dst), 'MR127')[0].hint).toBe(
      'GRANT SELECT, TRUNCATE, TRIGGER ON public.users TO lim;',
    );
    const guarded = livePeer(
      'staging',
      [table('public.users', undefined, { hasGuard: true, missingPrivileges: ['TRIGGER'] })],
      { role: { ...limited, canCreateInDatabase: true } },
    );
    expect(codes(plan(mirror('m', ['public.users']), src(), guarded))).toEqual([]);
  });

  it('MR127: destroying a mirror drops the guard, which needs ownership of the kept table', () => {
    const m = mirror('m', ['public.users']);
    const s = src();
    const dst = livePeer('staging', [], { role: { ...limited, canCreateInDatabase: true } });
    applied(m, s, dst, ['public.users']);
    dst.tables['public\u0000users'] = {
      ...dst.tables['public\u0000users'],
      hasGuard: true,
      owned: false,
      owner: 'postgres',
    };
    const p = buildPlan(config([]), { peers: { prod: s, staging: dst } }, { selected: null, createdBy: 'test' });
    expect(codes(p)).toEqual(['MR127']);
    expect(find(p, 'MR127')[0].hint).toBe('ALTER TABLE public.users OWNER TO lim;');
  });

  it('MR128: migrating a catalog schema owned by another role', () => {
    const dst = livePeer('staging', [], {
      role: { ...limited, canCreateInDatabase: true },
      catalog: { version: 1, mirrors: {}, tables: [] },
      schemas: { mirrors: schema('mirrors', { owned: false }) },
    });
    const p = plan(mirror('m', ['public.users']), src(), dst);
    expect(codes(p)).toEqual(['MR128']);
    expect(find(p, 'MR128')[0].hint).toContain('ALTER SCHEMA mirrors OWNER TO lim;');
  });
});

describe('catalog writes and slot drops', () => {
  it('MR128: a role that does not own an existing catalog cannot record a new mirror there', () => {
    const dst = livePeer('staging', [], {
      role: { ...limited, canCreateInDatabase: true },
      catalog: { version: CATALOG_VERSION, mirrors: {}, tables: [] },
      schemas: { public: schema('public'), mirrors: schema('mirrors', { owned: false, owner: 'team_a' }) },
    });
    const p = plan(mirror('m', ['public.users']), livePeer('prod', [table('public.users')]), dst);
    expect(find(p, 'MR128')).toHaveLength(1);
    expect(find(p, 'MR128')[0].message).toContain('owned by team_a');
  });

  it('MR104: a plan that only destroys still needs REPLICATION to drop the slot', () => {
    const m = mirror('m', ['public.users']);
    const s = livePeer('prod', [table('public.users')], { role: { ...limited, replication: false } });
    const dst = livePeer('staging');
    applied(m, s, dst, ['public.users']);
    const p = buildPlan(config([]), { peers: { prod: s, staging: dst } }, { selected: null, createdBy: 'test' });
    expect(codes(p)).toContain('MR104');
    expect(find(p, 'MR104')[0].hint).toBe('ALTER ROLE lim WITH REPLICATION;');
  });
});
