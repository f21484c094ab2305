/** The synchronous_standby_names action in plans (diff/sync-plan.ts), on constructed inspections: no database. */
import { describe, expect, it } from 'vitest';
import { PROMOTE_DEFAULTS } from '../../src/config/types.js';
import { buildPlan } from '../../src/diff/build.js';
import type { Config, Mirror } from '../../src/config/types.js';
import type { PeerLive } from '../../src/inspect/types.js';
import type { Plan } from '../../src/plan/types.js';
import { applied, config, livePeer, mirror, standbyNamesFacts, table } from '../support/fixtures.js';

const plan = (c: Config, peers: PeerLive[]) =>
  buildPlan(c, { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) }, { selected: null, createdBy: 'test' });

/** A Following sync mirror `m` on a source whose synchronous_standby_names is `setting`. */
function following(m: Mirror, setting: string) {
  const src = livePeer('prod', [table('public.users')]);
  const dst = livePeer('staging');
  applied(m, src, dst, ['public.users']);
  Object.assign(dst.catalog.mirrors[m.name], { leaseHeld: true, heartbeatAgeMs: 100 });
  Object.assign(src, {
    systemIdentifier: '7001',
    standbyNames: standbyNamesFacts({
      setting,
      source: setting ? 'configuration file' : 'default',
      sourcefile: setting ? '/data/postgresql.auto.conf' : null,
      sourceline: setting ? 3 : null,
      commitScope: { setting: 'on', source: 'default', databases: [{ name: 'app', setting: null }], roles: [] },
    }),
  });
  // What mirrors recorded when it wrote the value.
  dst.catalog.syncStandbys = { '7001': { value: setting, degraded: {} } };
  return [src, dst];
}

const syncAction = (p: Plan) => p.actions.find((a) => a.kind === 'sync_standbys');

describe('the synchronous_standby_names action', () => {
  it('never asks for more standbys than can answer, and says so when it lowers sync_quorum', () => {
    const m = mirror('x', ['public.users'], { mode: 'sync', sync_quorum: 2 });
    const a = syncAction(plan(config([m]), following(m, '')))!;
    expect(a.after).toEqual({ value: 'ANY 1 ("mirrors_x")', members: ['x'] });
    expect(a.reason).toMatch(/wait for 1 of x .*sync_quorum is 2, but only 1 can answer now/);
  });

  it('before a promotion: the mirror leaves first, and the reason and members say so', () => {
    const m = mirror('x', ['public.users'], { mode: 'sync', promote: PROMOTE_DEFAULTS });
    const p = plan(config([m]), following(m, 'ANY 1 ("mirrors_x")'));
    const a = syncAction(p)!;
    expect(a.before).toEqual({ value: 'ANY 1 ("mirrors_x")', members: ['x'] });
    expect(a.after).toEqual({ value: '', members: [] });
    expect(a.reason).toMatch(/^x leaves synchronous_standby_names first/);
    const promotion = p.actions.find((x) => x.kind === 'promotion')!;
    expect(promotion.depends_on).toContain(a.id);
    const note = p.diagnostics.find((d) => d.code === 'MR191')!;
    expect(note.hint).toMatch(/leaves synchronous_standby_names before that action/);
  });

  it("says nothing of a promoted sync mirror (it is no one's standby any more)", () => {
    const m = mirror('x', ['public.users'], { mode: 'sync' });
    const peers = following(m, '');
    peers[1].catalog.mirrors.x.promotedAt = '2026-01-01T00:00:00.000Z';
    const p = plan(config([m]), peers);
    expect(p.diagnostics.map((d) => d.code)).not.toContain('MR191');
    expect(syncAction(p)).toBeUndefined();
  });
});
