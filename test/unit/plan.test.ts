import { describe, expect, it } from 'vitest';
import { buildPlan, hasErrors } from '../../src/diff/build.js';
import type { Plan, SnapshotDetails } from '../../src/plan/types.js';
import { applied, col, config, livePeer, mirror, table } from '../support/fixtures.js';

const plan = (c: ReturnType<typeof config>, peers: ReturnType<typeof livePeer>[], selected: string[] | null = null) =>
  buildPlan(c, { peers: Object.fromEntries(peers.map((p) => [p.peer, p])) }, { selected, createdBy: 'test' });

const addresses = (p: Plan) => p.actions.map((a) => `${a.op} ${a.address}`);
const codes = (p: Plan) => p.diagnostics.map((d) => d.code);

function expectTopological(p: Plan) {
  const pos = new Map(p.actions.map((a, i) => [a.id, i]));
  for (const a of p.actions) for (const d of a.depends_on) expect(pos.get(d)!).toBeLessThan(pos.get(a.id)!);
}

describe('plan for a new mirror', () => {
  const users = table(
    'public.users',
    [col('id', 'bigint', { notNull: true }), col('email', 'text', { notNull: true })],
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
          name: 'users_email_key',
          definition: 'CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)',
          unique: true,
          primary: false,
          columns: ['email'],
        },
      ],
    },
  );
  const orders = table(
    'public.orders',
    [col('id', 'bigint', { notNull: true }), col('user_id', 'bigint'), col('internal_notes', 'text')],
    {
      foreignKeys: [
        {
          name: 'orders_user_id_fkey',
          definition: 'FOREIGN KEY (user_id) REFERENCES public.users(id)',
          references: { schema: 'public', name: 'users' },
        },
      ],
    },
  );

  it('creates catalog, mirror, tables, publication, slot, snapshot, indexes, foreign keys and stream in dependency order', () => {
    const m = mirror('m', ['public.users', 'public.orders']);
    const p = plan(config([m]), [livePeer('prod', [users, orders]), livePeer('staging')]);
    expect(codes(p)).toEqual([]);
    expect(addresses(p)).toEqual([
      'create peer.staging.catalog',
      'create mirror.m',
      'create mirror.m.table.public.users',
      'create mirror.m.table.public.orders',
      'create mirror.m.publication',
      'create mirror.m.slot',
      'create mirror.m.snapshot',
      'create mirror.m.table.public.users.indexes',
      'create mirror.m.table.public.orders.foreign_keys',
      'create mirror.m.stream',
    ]);
    expectTopological(p);
    expect(p.summary).toEqual({ create: 10, update: 0, delete: 0, replace: 0 });
    const fk = p.actions.find((a) => a.kind === 'foreign_keys')!;
    expect(fk.details.sql).toEqual([
      'ALTER TABLE "public"."orders" ADD CONSTRAINT "orders_user_id_fkey" FOREIGN KEY (user_id) REFERENCES "public"."users"(id)',
    ]);
  });

  it('publishes a column list without excluded columns and creates the destination table without them', () => {
    const m = mirror('m', ['public.orders']);
    m.tables[0].exclude_columns = ['internal_notes'];
    const p = plan(config([m]), [livePeer('prod', [orders]), livePeer('staging')]);
    const pub = p.actions.find((a) => a.kind === 'publication')!;
    expect(pub.details.sql).toEqual([
      'CREATE PUBLICATION "mirrors_m" FOR TABLE "public"."orders" ("id", "user_id") WITH (publish_via_partition_root = true)',
      `COMMENT ON PUBLICATION "mirrors_m" IS 'managed by mirrors: mirror m'`,
    ]);
    const t = p.actions.find((a) => a.kind === 'table')!;
    expect((t.details as { sql: string[] }).sql[0]).not.toContain('internal_notes');
  });

  it('maps a renamed table across schemas and quotes identifiers that need it', () => {
    const src = table('Sales Dept.Order "Items"', [col('Id', 'bigint', { notNull: true })]);
    const m = mirror('m', []);
    m.tables = [
      {
        source: { kind: 'table', schema: 'Sales Dept', name: 'Order "Items"' },
        destination: { schema: 'public', name: 'OrderItems' },
        exclude_columns: [],
        pos: m.pos,
      },
    ];
    const p = plan(config([m]), [livePeer('prod', [src]), livePeer('staging')]);
    expect(codes(p)).toEqual([]);
    expect(addresses(p)).toContain('create mirror.m.table.public."OrderItems"');
    const t = p.actions.find((a) => a.kind === 'table')!;
    expect((t.details as { sql: string[] }).sql[0]).toBe(
      'CREATE TABLE "public"."OrderItems" (\n  "Id" bigint NOT NULL,\n  PRIMARY KEY ("Id")\n)',
    );
    const pub = p.actions.find((a) => a.kind === 'publication')!;
    expect((pub.details as { sql: string[] }).sql[0]).toContain('FOR TABLE "Sales Dept"."Order ""Items"""');
  });

  it('expands schema.* to every table of the schema, explicit mappings winning', () => {
    const a = table('reporting.a');
    const b = table('reporting.b');
    const m = mirror('m', ['reporting.*']);
    m.tables.push({
      source: { kind: 'table', schema: 'reporting', name: 'b' },
      destination: { schema: 'public', name: 'b2' },
      exclude_columns: [],
      pos: m.pos,
    });
    const p = plan(config([m]), [livePeer('prod', [a, b]), livePeer('staging')]);
    expect(addresses(p).filter((x) => x.includes('.table.'))).toEqual([
      'create mirror.m.table.public.b2',
      'create mirror.m.table.reporting.a',
    ]);
  });

  it('creates the enum a column needs before the table', () => {
    const t = table('public.moods', [
      col('id', 'bigint', { notNull: true }),
      col('mood', 'public.mood', { userType: 'public\u0000mood' }),
    ]);
    const src = livePeer('prod', [t], {
      types: { 'public\u0000mood': { schema: 'public', name: 'mood', kind: 'enum', labels: ['sad', "it's ok"] } },
    });
    const p = plan(config([mirror('m', ['public.moods'])]), [src, livePeer('staging')]);
    const type = p.actions.find((a) => a.kind === 'type')!;
    expect((type.details as { sql: string[] }).sql).toEqual([
      `CREATE TYPE "public"."mood" AS ENUM ('sad', 'it''s ok')`,
    ]);
    expect(p.actions.indexOf(type)).toBeLessThan(p.actions.findIndex((a) => a.kind === 'table'));
  });

  it('is deterministic', () => {
    const make = () =>
      plan(config([mirror('m', ['public.users', 'public.orders'])]), [
        livePeer('prod', [users, orders]),
        livePeer('staging'),
      ]);
    expect(JSON.stringify(make())).toBe(JSON.stringify(make()));
  });
});

describe('plan for an existing mirror', () => {
  const setup = (tables = ['public.users', 'public.orders']) => {
    const m = mirror('m', tables);
    const src = livePeer('prod', [table('public.users'), table('public.orders'), table('public.items')]);
    const dst = livePeer('staging');
    applied(m, src, dst, tables);
    return { m, src, dst };
  };

  it('has no changes when the live state matches', () => {
    const { m, src, dst } = setup();
    const p = plan(config([m]), [src, dst]);
    expect(p.actions).toEqual([]);
    expect(p.diagnostics).toEqual([]);
  });

  it('updates settings in place, showing before and after', () => {
    const { m, src, dst } = setup();
    const p = plan(config([{ ...m, max_batch_size: 5000 }]), [src, dst]);
    expect(addresses(p)).toEqual(['update mirror.m']);
    expect(p.actions[0].before).toEqual({ max_batch_size: 1000 });
    expect(p.actions[0].after).toEqual({ max_batch_size: 5000 });
  });

  it('adds a table: destination table, publication update, a snapshot of that table only', () => {
    const { src, dst } = setup();
    const p = plan(config([mirror('m', ['public.users', 'public.orders', 'public.items'])]), [src, dst]);
    expect(addresses(p)).toEqual([
      'create mirror.m.table.public.items',
      'update mirror.m.publication',
      'create mirror.m.snapshot',
      'create mirror.m.stream',
    ]);
    const snap = p.actions.find((a) => a.kind === 'snapshot')!;
    expect((snap.details.tables as { destination: { name: string } }[]).map((t) => t.destination.name)).toEqual([
      'items',
    ]);
    expect(snap.details.kind).toBe('tables');
  });

  it('removes a table from the stream but keeps its destination rows', () => {
    const { src, dst } = setup();
    const p = plan(config([mirror('m', ['public.users'])]), [src, dst]);
    expect(addresses(p)).toEqual(['delete mirror.m.table.public.orders', 'update mirror.m.publication']);
    expect(p.actions[0].reason).toMatch(/rows are kept/);
  });

  it('destroys a mirror removed from the config: slot, then publication, then catalog rows; data kept', () => {
    const { src, dst } = setup();
    const p = plan(config([]), [src, dst]);
    expect(addresses(p)).toEqual(['delete mirror.m.slot', 'delete mirror.m.publication', 'delete mirror.m']);
    expect(p.actions[2].reason).toMatch(/public\.users, public\.orders\) and their rows are kept/);
    expect(p.actions[0].risk).toBe('irreversible');
  });

  it('replaces a slot whose WAL was removed and copies every table again', () => {
    const { m, src, dst } = setup();
    src.slots.mirrors_m.walStatus = 'lost';
    const p = plan(config([m]), [src, dst]);
    expect(codes(p)).toEqual(['MR130']);
    expect(hasErrors(p)).toBe(false);
    expect(addresses(p)).toEqual(['replace mirror.m.slot', 'create mirror.m.snapshot', 'create mirror.m.stream']);
    expect(p.actions.find((a) => a.kind === 'snapshot')!.details.kind).toBe('full');
  });

  it('under resync_strategy merge, a lost slot is replaced and every table repaired in place: nothing emptied or copied', () => {
    const { m, src, dst } = setup();
    src.slots.mirrors_m.walStatus = 'lost';
    const p = plan(config([{ ...m, resync_strategy: 'merge' }]), [src, dst]);
    expect(codes(p)).toEqual(['MR130']);
    expect(p.diagnostics[0].hint).toMatch(/repairs every table in place/);
    expect(addresses(p)).toEqual([
      'update mirror.m', // the setting itself
      'replace mirror.m.slot',
      'replace mirror.m.table.public.users',
      'replace mirror.m.table.public.orders',
      'create mirror.m.stream',
    ]);
    const slot = p.actions[1];
    expect(slot.kind === 'slot' && slot.op === 'replace' && slot.details.tables).toBe('merge');
    for (const a of p.actions.filter((x) => x.kind === 'table')) {
      expect(a.details).toMatchObject({ strategy: 'merge', key: ['id'] });
      expect(a.depends_on).toContain(slot.id);
      expect(a.risk).toBe('safe');
    }
    // Interrupted after the new slot (tables still older than it): the merges are planned again, not copies.
    src.slots.mirrors_m.walStatus = 'reserved';
    dst.catalog.mirrors.m.consistentLsn = '0/9000';
    dst.catalog.mirrors.m.phase = 'snapshot';
    const again = plan(config([{ ...m, resync_strategy: 'merge' }]), [src, dst]);
    expect(addresses(again)).toEqual([
      'update mirror.m',
      'replace mirror.m.table.public.users',
      'replace mirror.m.table.public.orders',
      'create mirror.m.stream',
    ]);
  });

  it('resumes an interrupted snapshot with only the tables not yet copied', () => {
    const { m, src, dst } = setup();
    dst.catalog.tables[1].state = 'copying';
    dst.catalog.mirrors.m.phase = 'snapshot';
    const p = plan(config([m]), [src, dst]);
    expect(addresses(p)).toEqual(['create mirror.m.snapshot', 'create mirror.m.stream']);
    expect((p.actions[0].details as SnapshotDetails).tables.map((t) => t.destination.name)).toEqual(['orders']);
  });

  it('resumes an interrupted bootstrap without a copy from the slot it created, never with a new snapshot', () => {
    const { m, src, dst } = setup();
    m.do_initial_snapshot = false;
    for (const t of dst.catalog.tables) Object.assign(t, { state: 'pending', snapshotLsn: null });
    dst.catalog.mirrors.m.phase = 'bootstrapping';
    const p = plan(config([m]), [src, dst]);
    const snap = p.actions.find((a) => a.kind === 'snapshot')!.details as SnapshotDetails;
    expect(snap).toMatchObject({ kind: 'initial', copy: false });
  });

  it('refuses a changed source peer', () => {
    const { m, src, dst } = setup();
    dst.catalog.mirrors.m.sourcePeer = 'other';
    expect(codes(plan(config([m]), [src, dst]))).toEqual(['MR143']);
  });
});

describe('preflight diagnostics', () => {
  const run = (
    srcOver: Parameters<typeof livePeer>[2] = {},
    tables = [table('public.users')],
    m = mirror('m', ['public.users']),
    dst = livePeer('staging'),
  ) => plan(config([m]), [livePeer('prod', tables, srcOver), dst]);

  it('MR101 wal_level not logical', () =>
    expect(codes(run({ settings: { ...livePeer('x').settings, wal_level: 'replica' } }))).toEqual(['MR101']));
  it('MR102 too few replication slots', () =>
    expect(codes(run({ settings: { ...livePeer('x').settings, max_replication_slots: 2 }, slotsInUse: 2 }))).toEqual([
      'MR102',
    ]));
  it('MR103 too few WAL senders', () =>
    expect(codes(run({ settings: { ...livePeer('x').settings, max_wal_senders: 1 }, walSendersInUse: 1 }))).toEqual([
      'MR103',
    ]));
  it('MR104 no REPLICATION privilege', () =>
    expect(
      codes(run({ role: { name: 'app', superuser: false, replication: false, canCreateInDatabase: true } })),
    ).toEqual(['MR104']));
  it('MR105 unlimited max_slot_wal_keep_size is a warning', () => {
    const p = run({ settings: { ...livePeer('x').settings, max_slot_wal_keep_size: -1 } });
    expect(codes(p)).toEqual(['MR105']);
    expect(hasErrors(p)).toBe(false);
  });
  it('MR106: a lone sync mirror would stop every commit of the source while it is down', () =>
    expect(codes(run({}, undefined, mirror('m', ['public.users'], { mode: 'sync' })))).toEqual(['MR106']));
  it('MR106 is not raised for a lone sync mirror with a degrade policy', () =>
    expect(
      codes(
        run({}, undefined, mirror('m', ['public.users'], { mode: 'sync', on_sync_loss: { degrade_after_ms: 10_000 } })),
      ),
    ).toEqual([]));
  it('MR110 source table missing', () => expect(codes(run({}, []))).toEqual(['MR110']));
  it('MR111 no primary key and replica identity default', () =>
    expect(codes(run({}, [table('public.users', undefined, { primaryKey: null })]))).toEqual(['MR111']));
  it('MR111 replica identity nothing', () =>
    expect(codes(run({}, [table('public.users', undefined, { replicaIdentity: 'n' })]))).toEqual(['MR111']));
  it('accepts REPLICA IDENTITY FULL and USING INDEX without a primary key', () => {
    expect(codes(run({}, [table('public.users', undefined, { primaryKey: null, replicaIdentity: 'f' })]))).toEqual([]);
    expect(
      codes(
        run({}, [
          table('public.users', undefined, { primaryKey: null, replicaIdentity: 'i', replicaIdentityColumns: ['id'] }),
        ]),
      ),
    ).toEqual([]);
  });
  it('MR112 excluded key column', () => {
    const m = mirror('m', ['public.users']);
    m.tables[0].exclude_columns = ['id'];
    expect(codes(run({}, undefined, m))).toEqual(['MR112']);
  });
  it('MR113 unknown excluded column', () => {
    const m = mirror('m', ['public.users']);
    m.tables[0].exclude_columns = ['nope'];
    expect(codes(run({}, undefined, m))).toEqual(['MR113']);
  });
  it('MR114 deferrable primary key', () =>
    expect(
      codes(
        run({}, [table('public.users', undefined, { primaryKey: { name: 'p', columns: ['id'], deferrable: true } })]),
      ),
    ).toEqual(['MR114']));
  it('MR120 existing destination table with another type', () => {
    const dst = livePeer('staging', [
      table('public.users', [col('id', 'bigint', { notNull: true }), col('name', 'integer')]),
    ]);
    expect(codes(run({}, undefined, undefined, dst))).toEqual(['MR120']);
  });
  it('MR121 excluded column NOT NULL without default on the destination', () => {
    const m = mirror('m', ['public.users']);
    m.tables[0].exclude_columns = ['name'];
    const dst = livePeer('staging', [
      table('public.users', [col('id', 'bigint', { notNull: true }), col('name', 'text', { notNull: true })]),
    ]);
    expect(codes(run({}, undefined, m, dst))).toEqual(['MR121']);
  });
  it('MR122 destination table already holds rows', () => {
    const dst = livePeer('staging', [table('public.users', undefined, { hasRows: true })]);
    expect(codes(run({}, undefined, undefined, dst))).toEqual(['MR122']);
  });
  it('MR123 destination table without the key', () => {
    const dst = livePeer('staging', [table('public.users', undefined, { primaryKey: null })]);
    expect(codes(run({}, undefined, undefined, dst))).toEqual(['MR123']);
  });
  it('MR131 and MR132: publication and slot of that name not owned', () => {
    const src = livePeer('prod', [table('public.users')]);
    src.publications.mirrors_m = {
      name: 'mirrors_m',
      owner: 'x',
      allTables: false,
      viaRoot: false,
      tables: [],
      comment: null,
    };
    src.slots.mirrors_m = {
      name: 'mirrors_m',
      plugin: 'pgoutput',
      slotType: 'logical',
      database: 'app',
      active: false,
      activePid: null,
      temporary: false,
      confirmedFlushLsn: null,
      restartLsn: null,
      walStatus: 'reserved',
      retainedBytes: '0',
    };
    expect(codes(plan(config([mirror('m', ['public.users'])]), [src, livePeer('staging')]))).toEqual([
      'MR131',
      'MR132',
    ]);
  });
  it('MR140 two mirrors write the same destination table', () => {
    const p = plan(config([mirror('a', ['public.users']), mirror('b', ['public.users'])]), [
      livePeer('prod', [table('public.users')]),
      livePeer('staging'),
    ]);
    expect(codes(p)).toEqual(['MR140']);
  });
  it('MR141 a wildcard matching nothing is an error', () =>
    expect(codes(run({}, undefined, mirror('m', ['nothing.*'])))).toEqual(['MR141']));
});

describe('read-only guard', () => {
  it('new destination tables get the MIRROR_READ_ONLY guard in the same action', () => {
    const p = plan(config([mirror('m', ['public.users'])]), [
      livePeer('prod', [table('public.users')]),
      livePeer('staging'),
    ]);
    const t = p.actions.find((a) => a.kind === 'table')!;
    expect((t.details as { sql: string[] }).sql.at(-1)).toBe(
      `CREATE TRIGGER "mirrors_read_only" BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "public"."users" FOR EACH STATEMENT EXECUTE FUNCTION mirrors.read_only_guard('m', 'prod')`,
    );
    expect(t.reason).toContain('read-only (MIRROR_READ_ONLY)');
  });

  it('a mirrored table that lost its guard gets it back', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    dst.tables['public\u0000users'].hasGuard = false;
    const p = plan(config([m]), [src, dst]);
    expect(p.actions.map((a) => `${a.op} ${a.address}`)).toEqual(['update mirror.m.table.public.users']);
  });

  it('destroy drops the guards so the kept tables become writable', () => {
    const m = mirror('m', ['public.users']);
    const src = livePeer('prod', [table('public.users')]);
    const dst = livePeer('staging');
    applied(m, src, dst, ['public.users']);
    const p = plan(config([]), [src, dst]);
    expect((p.actions.at(-1)!.details as { sql: string[] }).sql).toEqual([
      'DROP TRIGGER IF EXISTS "mirrors_read_only" ON "public"."users"',
    ]);
  });
});
