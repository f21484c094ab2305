/** --replace in the differ (issue 11): which tables it copies again, and what it refuses. No database. */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import type { Config } from '../../src/config/types.js';
import type { PeerLive } from '../../src/inspect/types.js';
import { applied, config, livePeer, mirror, table } from '../support/fixtures.js';

const plan = (c: Config, peers: PeerLive[], replace: string[]) =>
  buildPlan(
    c,
    { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) },
    { selected: null, createdBy: 't', replace },
  );

function streaming(strategy: 'truncate' | 'merge' | 'swap' = 'truncate') {
  const m = mirror('m', ['public.users', 'public.orders'], { resync_strategy: strategy });
  const src = livePeer('prod', [table('public.users'), table('public.orders')]);
  const dst = livePeer('staging');
  applied(m, src, dst, ['public.users', 'public.orders']);
  return { c: config([m]), peers: [src, dst] };
}

describe('--replace', () => {
  it('a table address copies that table again, and only it; the slot stays', () => {
    const { c, peers } = streaming();
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    const replaced = p.actions.filter((a) => a.reason_code === 'replace_requested');
    expect(replaced.map((a) => [a.kind, a.op, a.address, a.risk])).toEqual([
      ['table', 'replace', 'mirror.m.table.public.orders', 'disruptive'],
    ]);
    expect(p.actions.some((a) => a.kind === 'slot')).toBe(false);
    const snapshot = p.actions.find((a) => a.kind === 'snapshot');
    expect(snapshot?.kind === 'snapshot' && snapshot.details.tables.map((t) => t.destination.name)).toEqual(['orders']);
    expect(p.replace).toEqual(['mirror.m.table.public.orders']);
    expect(p.diagnostics).toEqual([]);
  });

  it('a mirror address copies every table of it again', () => {
    const { c, peers } = streaming();
    const p = plan(c, peers, ['mirror.m']);
    expect(
      p.actions
        .filter((a) => a.reason_code === 'replace_requested')
        .map((a) => a.address)
        .sort(),
    ).toEqual(['mirror.m.table.public.orders', 'mirror.m.table.public.users']);
  });

  it('a table that is copied again anyway (its exclude_columns changed) counts as replaced: one action, no MR139', () => {
    const { c, peers } = streaming();
    peers[1].catalog.tables.find((t) => t.destination.name === 'orders')!.excludeColumns = ['note'];
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics.map((d) => d.code)).not.toContain('MR139');
    const orders = p.actions.filter((a) => a.address === 'mirror.m.table.public.orders');
    expect(orders.map((a) => [a.op, a.reason_code])).toEqual([['replace', 'table_source_changed']]);
  });

  it('refuses an address that names no copied table (MR139)', () => {
    const { c, peers } = streaming();
    expect(plan(c, peers, ['mirror.m.table.public.nope']).diagnostics.map((d) => d.code)).toEqual(['MR139']);
    expect(plan(c, peers, ['mirror.other']).diagnostics.map((d) => d.code)).toEqual(['MR139']);
  });

  it('under resync_strategy merge, the table is repaired in place by the worker: no copy, no snapshot, readers keep their rows', () => {
    const { c, peers } = streaming('merge');
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics).toEqual([]);
    const replaced = p.actions.filter((a) => a.reason_code === 'replace_requested');
    expect(replaced.map((a) => [a.kind, a.op, a.address, a.risk])).toEqual([
      ['table', 'replace', 'mirror.m.table.public.orders', 'safe'],
    ]);
    expect(replaced[0].details).toMatchObject({ strategy: 'merge', key: ['id'], chunk_rows: 2000 });
    expect(replaced[0].reason).toMatch(/readers keep every row/);
    expect(p.actions.some((a) => a.kind === 'snapshot' || a.kind === 'slot')).toBe(false);
    // A saved plan must still match after writes change the table's size: no sizes in the reason.
    peers[0].tables['public\u0000orders'].estimatedRows = '123456';
    peers[0].tables['public\u0000orders'].sizeBytes = '999999';
    const later = plan(c, peers, ['mirror.m.table.public.orders']).actions.find(
      (a) => a.reason_code === 'replace_requested',
    );
    expect(later?.reason).toBe(replaced[0].reason);
  });

  it('refuses a merge when the destination has no primary key matching the source (MR138), and changes nothing', () => {
    const { c, peers } = streaming('merge');
    const orders = peers[1].tables['public\u0000orders'];
    orders.primaryKey = null;
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics.map((d) => d.code)).toContain('MR138');
    expect(p.actions.some((a) => a.reason_code === 'replace_requested')).toBe(false);
  });
});
