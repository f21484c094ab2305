/** synchronous_standby_names for sync mirrors: the managed value and who owns the setting. Pure. */
import { describe, expect, it } from 'vitest';
import {
  standbyName,
  standbyNamesOwnership,
  standbyNamesValue,
  listedNames,
  syncGroups,
  standbyNamesQuorum,
  syncGuarantee,
  commitScope,
  type SyncMember,
} from '../../src/diff/sync-standbys.js';
import { standbyNamesFacts } from '../support/fixtures.js';

const facts = standbyNamesFacts;

describe('standbyNamesValue', () => {
  it('is a quorum over the Following sync mirrors, by their identifier-safe standby names, sorted', () => {
    expect(standbyName('orders')).toBe('mirrors_orders');
    expect(standbyNamesValue(['b', 'a', 'c'], 1)).toBe('ANY 1 ("mirrors_a", "mirrors_b", "mirrors_c")');
    expect(standbyNamesValue(['a'], 2)).toBe('ANY 1 ("mirrors_a")'); // never more than there are
    expect(standbyNamesValue([], 1)).toBe('');
    expect(() => standbyNamesValue(['a'], 0)).toThrow(/quorum/);
  });
});

describe('standbyNamesOwnership', () => {
  it('is ours when empty (the default, or an empty line) or exactly what mirrors last wrote via ALTER SYSTEM', () => {
    expect(standbyNamesOwnership(facts(), null)).toEqual({ ours: true });
    const written = 'ANY 1 ("mirrors_a")';
    expect(
      standbyNamesOwnership(
        facts({ setting: written, source: 'configuration file', sourcefile: '/d/postgresql.auto.conf', sourceline: 3 }),
        written,
      ),
    ).toEqual({ ours: true });
  });

  it('refuses a value mirrors did not write, naming the file and line', () => {
    const o = standbyNamesOwnership(
      facts({ setting: 'node2', source: 'configuration file', sourcefile: '/etc/postgresql.conf', sourceline: 123 }),
      null,
    );
    expect(o).toMatchObject({ ours: false, owner: '/etc/postgresql.conf:123' });
    if (!o.ours) expect(o.why).toMatch(/'node2'.*not a value mirrors wrote/);
  });

  it('refuses `*` (every walsender a candidate) even when empty-looking values surround it', () => {
    for (const setting of ['*', 'ANY 1 (*)', 'FIRST 1 (a, *)']) {
      const o = standbyNamesOwnership(
        facts({ setting, source: 'configuration file', sourcefile: '/d/postgresql.auto.conf' }),
        setting,
      );
      expect(o.ours).toBe(false);
    }
  });

  it('refuses a postgresql.conf entry ALTER SYSTEM would override, applied or waiting for a reload', () => {
    const o = standbyNamesOwnership(
      facts({
        fileSettings: [
          { sourcefile: '/etc/postgresql.conf', sourceline: 9, setting: 'patroni1', applied: false, error: null },
        ],
      }),
      null,
    );
    expect(o).toMatchObject({ ours: false, owner: '/etc/postgresql.conf:9' });
    if (!o.ours) expect(o.why).toMatch(/not applied yet/);
  });

  it('refuses the command line, allow_alter_system = off, and a role without the privilege', () => {
    expect(standbyNamesOwnership(facts({ source: 'command line' }), null)).toMatchObject({ ours: false });
    expect(standbyNamesOwnership(facts({ allowAlterSystem: false }), null)).toMatchObject({
      ours: false,
      owner: 'allow_alter_system = off',
    });
    const p = standbyNamesOwnership(facts({ mayAlterSystem: false }), null);
    expect(p).toMatchObject({ ours: false, owner: 'privileges' });
    if (!p.ours) expect(p.hint).toMatch(/GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names/);
  });
});

describe('syncGroups', () => {
  const member = (mirror: string, over: Partial<import('../../src/diff/sync-standbys.js').SyncMember> = {}) => ({
    mirror,
    sourceSystem: '7001',
    recorded: { status: 'Following', phase: 'ready', paused: false, promoted: false },
    quorum: 1,
    leaving: false,
    listed: false,
    ...over,
  });

  it('lists only the mirrors that can answer now, per source cluster; the others wait with a reason', () => {
    const groups = syncGroups([
      member('a'),
      member('b', { recorded: { status: 'Bootstrapping', phase: 'snapshot', paused: false, promoted: false } }),
      member('c', { leaving: true }),
      member('d', { recorded: undefined }),
      member('e', {
        sourceSystem: '7002',
        recorded: { status: 'Degraded', phase: 'ready', paused: false, promoted: false },
      }),
    ]);
    expect(groups.map((g) => [g.sourceSystem, g.value])).toEqual([
      ['7001', 'ANY 1 ("mirrors_a")'],
      ['7002', 'ANY 1 ("mirrors_e")'],
    ]);
    expect(groups[0].waiting.map((w) => w.mirror)).toEqual(['b', 'c', 'd']);
    expect(groups[0].waiting[0].why).toMatch(/being copied/);
  });

  it('says when mirrors of one cluster ask for different quorums, and never lists none as a quorum of zero', () => {
    const [g] = syncGroups([member('a', { quorum: 2 }), member('b', { quorum: 1 })]);
    expect(g.quorumConflict).toEqual([1, 2]);
    const [empty] = syncGroups([member('a', { recorded: undefined })]);
    expect(empty.value).toBe('');
  });
});

describe('a listed sync mirror that is down (on_sync_loss: block)', () => {
  it('stays in the value: commits keep waiting for it, as Postgres does; only leaving, pausing or promotion drop it', () => {
    const down = { status: 'Disconnected', phase: 'ready', paused: false, promoted: false };
    const member = (mirror: string, over: Partial<SyncMember> = {}): SyncMember => ({
      mirror,
      sourceSystem: '7001',
      recorded: down,
      quorum: 1,
      leaving: false,
      listed: true,
      ...over,
    });
    expect(syncGroups([member('a')])[0].value).toBe('ANY 1 ("mirrors_a")');
    expect(syncGroups([member('a', { listed: false })])[0].value).toBe(''); // never joins while down
    expect(syncGroups([member('a', { leaving: true })])[0].value).toBe('');
  });

  it('reads the names a value lists as Postgres compares them', () => {
    expect([...listedNames('ANY 1 ("mirrors_a", "mirrors_b")')]).toEqual(['mirrors_a', 'mirrors_b']);
    expect([...listedNames('FIRST 2 (Node1, "Node2")')]).toEqual(['node1', 'Node2']);
    expect([...listedNames('a, b')]).toEqual(['a', 'b']);
    expect([...listedNames('')]).toEqual([]);
  });
});

describe('syncGuarantee (the DR loss window of a sync mirror)', () => {
  const at = '2026-01-01T00:00:10.000Z';
  const reading = (state: string | null, names: string) => ({
    state,
    standby_names: names,
    since: '2026-01-01T00:00:00.000Z',
  });
  const one = 'ANY 1 ("mirrors_m")';
  it('holds for a blocking mirror every commit waited for: alone, sync_state sync, or a quorum of all listed', () => {
    expect(syncGuarantee('m', 'block', reading('quorum', one), at, { value: one, degraded: {} })).toMatch(
      /every commit the source acknowledged waited for this mirror .* as of its last reading at 2026-01-01T00:00:10/,
    );
    expect(
      syncGuarantee('m', 'block', reading('quorum', 'ANY 2 ("mirrors_m", "mirrors_n")'), at, undefined),
    ).not.toBeNull();
    expect(syncGuarantee('m', 'block', reading('sync', 'FIRST 1 (mirrors_m, s2)'), at, undefined)).not.toBeNull();
  });
  it('does not hold when a commit could return without it', () => {
    // Either of two may have confirmed a commit.
    expect(
      syncGuarantee('m', 'block', reading('quorum', 'ANY 1 ("mirrors_m", "mirrors_n")'), at, undefined),
    ).toBeNull();
    expect(syncGuarantee('m', 'block', reading('async', one), at, undefined)).toBeNull();
    expect(syncGuarantee('m', 'block', reading('potential', 'FIRST 1 (s1, mirrors_m)'), at, undefined)).toBeNull();
    // The degrade policy may have let commits through since.
    expect(syncGuarantee('m', { degrade_after_ms: 1000 }, reading('quorum', one), at, undefined)).toBeNull();
    expect(syncGuarantee('m', 'block', reading('quorum', one), at, { value: one, degraded: { m: at } })).toBeNull();
    // The value changed after the reading (an apply took it out).
    expect(syncGuarantee('m', 'block', reading('quorum', one), at, { value: '', degraded: {} })).toBeNull();
    expect(syncGuarantee('m', 'block', undefined, at, undefined)).toBeNull();
  });
  it('reads the quorum of every spelling of the setting', () => {
    expect(standbyNamesQuorum('ANY 2 (a, b, c)')).toBe(2);
    expect(standbyNamesQuorum('first 3 (a, b, c)')).toBe(3);
    expect(standbyNamesQuorum('2 (a, b)')).toBe(2);
    expect(standbyNamesQuorum('a, b')).toBe(1);
  });
});

describe('commitScope (which databases wait for the synchronous standbys)', () => {
  const dbs = [
    { name: 'app', setting: null },
    { name: 'postgres', setting: null },
    { name: 'reports', setting: 'off' },
  ];
  it('with the default on: every database without a setting of its own waits, mirrored or not', () => {
    const s = commitScope({ setting: 'on', source: 'default', databases: dbs, roles: [] }, ['app']);
    expect(s).toMatchObject({
      cluster: 'on',
      waiting: ['app', 'postgres'],
      othersWaiting: ['postgres'],
      mirroredNotWaiting: [],
    });
  });
  it('scoped (cluster local, the mirrored database on): only it waits; role settings are listed with their effect', () => {
    const s = commitScope(
      {
        setting: 'local',
        source: 'configuration file',
        databases: [{ name: 'app', setting: 'on' }, ...dbs.slice(1)],
        roles: [{ role: 'batch', database: 'app', setting: 'off' }],
      },
      ['app'],
    );
    expect(s).toMatchObject({ waiting: ['app'], othersWaiting: [], mirroredNotWaiting: [] });
    expect(s.roles).toEqual([{ role: 'batch', database: 'app', setting: 'off', waits: false }]);
  });
  it('a mirrored database that does not wait is named (sync would give it nothing); spellings of on count', () => {
    const s = commitScope({ setting: 'local', source: 'configuration file', databases: dbs, roles: [] }, ['app']);
    expect(s.mirroredNotWaiting).toEqual(['app']);
    const t = commitScope(
      { setting: 'local', source: 'configuration file', databases: [{ name: 'app', setting: 'true' }], roles: [] },
      ['app'],
    );
    expect(t.waiting).toEqual(['app']);
  });
  it('a session value from a database setting hides the cluster value: unknown, taken as on', () => {
    const s = commitScope({ setting: 'local', source: 'database', databases: dbs, roles: [] }, ['app']);
    expect(s.cluster).toBeNull();
    expect(s.waiting).toEqual(['app', 'postgres']);
  });
});
