/**
 * resync_strategy swap in the plan (issue 11): the table is copied into a shadow and swapped in by SQL that carries
 * what readers and the tool depend on; what it cannot carry is refused (MR135) and named. No database.
 */
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/diff/build.js';
import { tableKey } from '../../src/config/names.js';
import type { Config } from '../../src/config/types.js';
import type { LiveSwapFacts, PeerLive } from '../../src/inspect/types.js';
import type { SnapshotCreate, TableSpec } from '../../src/plan/types.js';
import { applied, config, livePeer, mirror, swapFacts, table } from '../support/fixtures.js';

const plan = (c: Config, peers: PeerLive[], replace: string[] = []) =>
  buildPlan(
    c,
    { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) },
    { selected: null, createdBy: 't', replace },
  );

function streaming(facts: Partial<LiveSwapFacts> = {}) {
  const m = mirror('m', ['public.users', 'public.orders'], { resync_strategy: 'swap' });
  const src = livePeer('prod', [table('public.users'), table('public.orders')]);
  const dst = livePeer('staging');
  applied(m, src, dst, ['public.users', 'public.orders']);
  for (const q of ['public.users', 'public.orders']) {
    const t = dst.tables[tableKey({ schema: 'public', name: q.split('.')[1] })];
    t.hasGuard = true;
    t.swap = swapFacts(q, q === 'public.orders' ? facts : {});
  }
  return { c: config([m]), src, dst, peers: [src, dst] };
}

const snapshotSpecs = (p: ReturnType<typeof plan>): TableSpec[] =>
  (p.actions.find((a) => a.kind === 'snapshot') as SnapshotCreate | undefined)?.details.tables ?? [];

describe('resync_strategy swap', () => {
  it('--replace copies into a shadow and swaps it in: a safe action, readers keep the old rows until then', () => {
    const { c, peers, dst } = streaming();
    const oid = dst.tables[tableKey({ schema: 'public', name: 'orders' })].oid;
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics).toEqual([]);
    const replaced = p.actions.filter((a) => a.reason_code === 'replace_requested');
    expect(replaced.map((a) => [a.kind, a.op, a.risk])).toEqual([['table', 'replace', 'safe']]);
    expect(replaced[0].reason).toMatch(/into public\.mirrors_swap_\d+ and swap that in .* readers see the old rows/);
    const [spec] = snapshotSpecs(p);
    expect(spec.destination).toEqual({ schema: 'public', name: 'orders' });
    const swap = spec.swap!;
    expect(swap.shadow).toEqual({ schema: 'public', name: `mirrors_swap_${oid}` });
    const sh = `"public"."mirrors_swap_${oid}"`;
    expect(swap.prepare).toEqual([
      `DROP TABLE IF EXISTS ${sh}`,
      `CREATE TABLE ${sh} (LIKE "public"."orders" INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS EXCLUDING COMMENTS EXCLUDING STATISTICS)`,
    ]);
    // The key is built after the load, under a temporary name that the swap renames.
    expect(swap.after_load).toEqual([
      `ALTER TABLE ${sh} ADD CONSTRAINT "mirrors_swap_${oid}_1" PRIMARY KEY (id)`,
      `ANALYZE ${sh}`,
    ]);
    expect(swap.swap).toEqual([
      "SET LOCAL lock_timeout = '5s'",
      'LOCK TABLE "public"."orders" IN ACCESS EXCLUSIVE MODE',
      'DROP TABLE "public"."orders"',
      `ALTER TABLE ${sh} RENAME TO "orders"`,
      `ALTER TABLE "public"."orders" RENAME CONSTRAINT "mirrors_swap_${oid}_1" TO "orders_pkey"`,
      'ALTER TABLE "public"."orders" OWNER TO "mirrors"',
      expect.stringMatching(
        /^CREATE TRIGGER "mirrors_read_only" BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "public"."orders"/,
      ),
    ]);
    expect(swap.after_swap).toEqual([]);
    // The other table is not touched.
    expect(snapshotSpecs(p).map((s) => s.destination.name)).toEqual(['orders']);
  });

  it('carries grants, comments, policies, triggers, indexes, statistics, sequences, views and foreign keys', () => {
    const { c, peers, dst } = streaming({
      owner: 'app',
      comment: "it's the orders",
      columnComments: [{ column: 'name', comment: 'who' }],
      grants: [
        { grantee: 'reporting', privilege: 'SELECT', grantable: false, column: null },
        { grantee: 'PUBLIC', privilege: 'SELECT', grantable: false, column: 'name' },
      ],
      rowSecurity: true,
      forceRowSecurity: true,
      policies: [
        { name: 'mine', command: 'r', permissive: true, roles: ['reporting'], using: '(id > 0)', check: null },
      ],
      replicaIdentity: 'f',
      triggers: [
        {
          name: 'audit',
          definition: 'CREATE TRIGGER audit AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.audit()',
          enabled: 'D',
        },
      ],
      indexes: [
        {
          name: 'by name',
          quoted: '"by name"',
          definition: 'CREATE INDEX "by name" ON public.orders USING btree (name)',
        },
      ],
      statistics: [
        {
          schema: 'public',
          name: 'st',
          quoted: 'public.st',
          definition: 'CREATE STATISTICS public.st (ndistinct) ON id, name FROM public.orders',
        },
      ],
      sequences: [
        { column: 'id', sequence: 'public.orders_id_seq', name: 'orders_id_seq', identity: true },
        { column: 'n', sequence: 'public.orders_n_seq', name: 'orders_n_seq', identity: false },
      ],
      constraints: [
        { name: 'orders_pkey', type: 'p', definition: 'PRIMARY KEY (id)', validated: true },
        { name: 'positive', type: 'c', definition: 'CHECK ((id > 0))', validated: true },
        { name: 'to_users', type: 'f', definition: 'FOREIGN KEY (id) REFERENCES public.users(id)', validated: true },
      ],
      dependents: [
        {
          kind: 'view',
          description: 'view public.recent',
          on: 'public.recent',
          onDisplay: 'public.recent',
          name: null,
          definition: null,
          validated: null,
          owned: true,
          recreate: [
            'CREATE VIEW public.recent AS SELECT id FROM public.orders',
            'ALTER VIEW public.recent OWNER TO app',
          ],
        },
        {
          kind: 'foreign_key',
          description: 'constraint lines_order on table public.lines',
          on: 'public.lines',
          onDisplay: 'public.lines',
          name: 'lines_order',
          definition: 'FOREIGN KEY (order_id) REFERENCES public.orders(id)',
          validated: true,
          owned: true,
          recreate: null,
        },
      ],
    });
    const oid = dst.tables[tableKey({ schema: 'public', name: 'orders' })].oid;
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics).toEqual([]);
    const swap = snapshotSpecs(p)[0].swap!;
    const sh = `"public"."mirrors_swap_${oid}"`;
    expect(swap.after_load).toEqual([
      `CREATE INDEX "mirrors_swap_${oid}_1" ON ${sh} USING btree (name)`,
      `ALTER TABLE ${sh} ADD CONSTRAINT "mirrors_swap_${oid}_2" PRIMARY KEY (id)`,
      `ALTER TABLE ${sh} ADD CONSTRAINT "positive" CHECK ((id > 0))`,
      `CREATE STATISTICS "public"."mirrors_swap_${oid}_3" (ndistinct) ON id, name FROM ${sh}`,
      `ANALYZE ${sh}`,
    ]);
    const s = swap.swap;
    const at = (text: string) => {
      const i = s.indexOf(text);
      expect(i, text).toBeGreaterThanOrEqual(0);
      return i;
    };
    // Locked at once, views first (a query of a view locks it, then the table); dependents go before the old table,
    // and come back after the shadow took its place.
    expect(s[1]).toBe('LOCK TABLE public.recent, public.lines, "public"."orders" IN ACCESS EXCLUSIVE MODE');
    expect(at('ALTER TABLE public.lines DROP CONSTRAINT "lines_order"')).toBeLessThan(
      at('DROP TABLE "public"."orders"'),
    );
    expect(at('DROP VIEW public.recent')).toBeLessThan(at('DROP TABLE "public"."orders"'));
    const renamed = at(`ALTER TABLE ${sh} RENAME TO "orders"`);
    expect(at(`ALTER INDEX "public"."mirrors_swap_${oid}_1" RENAME TO "by name"`)).toBeGreaterThan(renamed);
    expect(at(`ALTER STATISTICS "public"."mirrors_swap_${oid}_3" RENAME TO "st"`)).toBeGreaterThan(renamed);
    at('ALTER TABLE "public"."orders" OWNER TO "app"');
    at('GRANT SELECT ON "public"."orders" TO "reporting"');
    at('GRANT SELECT ("name") ON "public"."orders" TO PUBLIC');
    at(`COMMENT ON TABLE "public"."orders" IS 'it''s the orders'`);
    at(`COMMENT ON COLUMN "public"."orders"."name" IS 'who'`);
    at('ALTER TABLE "public"."orders" ENABLE ROW LEVEL SECURITY');
    at('ALTER TABLE "public"."orders" FORCE ROW LEVEL SECURITY');
    at('CREATE POLICY "mine" ON "public"."orders" AS PERMISSIVE FOR SELECT TO "reporting" USING ((id > 0))');
    at('ALTER TABLE "public"."orders" REPLICA IDENTITY FULL');
    at('CREATE TRIGGER audit AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.audit()');
    at('ALTER TABLE "public"."orders" DISABLE TRIGGER "audit"');
    at(
      'ALTER TABLE "public"."orders" ADD CONSTRAINT "to_users" FOREIGN KEY (id) REFERENCES public.users(id) NOT VALID',
    );
    at(
      'ALTER TABLE public.lines ADD CONSTRAINT "lines_order" FOREIGN KEY (order_id) REFERENCES public.orders(id) NOT VALID',
    );
    at('CREATE VIEW public.recent AS SELECT id FROM public.orders');
    // The sequence goes on from the old one's position before it is dropped, and takes its name after.
    expect(s.findIndex((x) => x.includes('FROM public.orders_id_seq; PERFORM setval'))).toBeLessThan(
      at('DROP TABLE "public"."orders"'),
    );
    expect(s.findIndex((x) => x.includes("RENAME TO %I'") && x.includes("'orders_id_seq'"))).toBeGreaterThan(renamed);
    // A serial column's sequence is the shadow's from then on (its default, copied by LIKE, calls it).
    expect(at(`ALTER SEQUENCE public.orders_n_seq OWNED BY ${sh}."n"`)).toBeLessThan(
      at('DROP TABLE "public"."orders"'),
    );
    expect(s.some((x) => x.includes("'orders_n_seq'"))).toBe(false);
    expect(swap.after_swap).toEqual([
      'ALTER TABLE "public"."orders" VALIDATE CONSTRAINT "to_users"',
      'ALTER TABLE public.lines VALIDATE CONSTRAINT "lines_order"',
    ]);
    const reason = p.actions.find((a) => a.reason_code === 'replace_requested')!.reason;
    expect(reason).toContain(
      'carries foreign key lines_order of public.lines, view public.recent, index, 2 constraints, foreign key, statistics object, owner, 2 grants, comments, row-level security, policy, replica identity, trigger)',
    );
    expect(swap.carried).toContain('view public.recent');
    expect(swap.carried).toContain('foreign key lines_order of public.lines');
  });

  it('refuses (MR135) what it cannot carry, naming each, and changes nothing', () => {
    const other = (description: string) => ({
      kind: 'other' as const,
      description,
      on: null,
      onDisplay: null,
      name: null,
      definition: null,
      validated: null,
      owned: null,
      recreate: null,
    });
    const { c, peers } = streaming({
      dependents: [other('materialized view public.totals'), other('function public.all_orders()')],
    });
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics.map((d) => [d.code, d.severity])).toEqual([['MR135', 'error']]);
    expect(p.diagnostics[0].message).toContain('materialized view public.totals; function public.all_orders()');
  });

  it('refuses (MR135) a table or view the destination role does not own: DROP needs ownership', () => {
    const { c, peers, dst } = streaming();
    dst.tables[tableKey({ schema: 'public', name: 'orders' })].owned = false;
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['MR135']);
    expect(p.diagnostics[0].message).toContain('role mirrors does not own it (owner mirrors), so it cannot drop it');
  });

  it('a lost slot copies every table again, each into its shadow', () => {
    const { c, peers, src } = streaming();
    src.slots.mirrors_m.walStatus = 'lost';
    const p = plan(c, peers);
    expect(p.diagnostics.map((d) => d.code)).toEqual(['MR130']);
    const specs = snapshotSpecs(p);
    expect(specs.map((s) => [s.destination.name, s.swap?.shadow.name.startsWith('mirrors_swap_')])).toEqual([
      ['users', true],
      ['orders', true],
    ]);
  });

  it('a destination table that is gone is created and copied as usual', () => {
    const { c, peers, dst } = streaming();
    delete dst.tables[tableKey({ schema: 'public', name: 'orders' })];
    const p = plan(c, peers, ['mirror.m.table.public.orders']);
    const [spec] = snapshotSpecs(p);
    expect(spec.swap).toBeUndefined();
  });
});
