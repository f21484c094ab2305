/**
 * Schema drift, without a database: which columns differ and how (drift-columns.ts), what the worker gets for
 * a Relation message (relationDrift), and what `mirrors plan` reports for a ready table, renders and exits with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import kleur from 'kleur';
import { compareColumns, type ColumnFacts } from '../../src/diff/drift-columns.js';
import { relationDrift } from '../../src/diff/drift.js';
import { buildPlan } from '../../src/diff/build.js';
import { planExitCode } from '../../src/cli/plan.js';
import { renderPlanText } from '../../src/render/text.js';
import { renderPlanMarkdown } from '../../src/render/markdown.js';
import { DIAGNOSTICS } from '../../src/plan/diagnostics.js';
import type { LiveColumn, LiveTable, PeerLive } from '../../src/inspect/types.js';
import type { Mirror } from '../../src/config/types.js';
import type { Plan } from '../../src/plan/types.js';
import { applied, col, config, livePeer, mirror, numbered, table } from '../support/fixtures.js';

const c = (name: string, attnum?: number, over: Partial<ColumnFacts> = {}): ColumnFacts => ({
  name,
  type: 'integer',
  ...(attnum === undefined ? {} : { attnum }),
  ...over,
});
const kinds = (changes: ReturnType<typeof compareColumns>) =>
  changes.map(
    (x) => `${x.kind} ${'source' in x ? x.source.name : ''}${'destination' in x ? `<${x.destination.name}` : ''}`,
  );
const compare = (
  source: ColumnFacts[],
  destination: ColumnFacts[],
  over: { excluded?: string[]; dropped?: number } = {},
) =>
  kinds(
    compareColumns({
      source,
      destination,
      excluded: over.excluded ?? [],
      sourceDropped: over.dropped,
      constraints: true,
    }),
  );

describe('which columns differ, and how', () => {
  it('finds nothing when both sides have the same columns', () => {
    expect(compare([c('id', 1), c('a', 2)], [c('id'), c('a')], { dropped: 0 })).toEqual([]);
  });

  it('an added column comes last (ADD COLUMN gives it the highest attnum)', () => {
    expect(compare([c('id', 1), c('a', 2), c('extra', 3)], [c('id'), c('a')], { dropped: 0 })).toEqual(['added extra']);
  });

  it('a destination column the source lost is dropped when the source dropped a column, else added by hand', () => {
    expect(compare([c('id', 1), c('b', 3)], [c('id'), c('a'), c('b')], { dropped: 1 })).toEqual(['dropped <a']);
    expect(compare([c('id', 1), c('b', 2)], [c('id'), c('b'), c('x')], { dropped: 0 })).toEqual(['extra <x']);
    // Not inspected: the source change is the likelier story.
    expect(compare([c('id'), c('b')], [c('id'), c('a'), c('b')])).toEqual(['dropped <a']);
  });

  it('a rename keeps the attnum: same place, new name', () => {
    expect(compare([c('id', 1), c('b', 2)], [c('id'), c('a')], { dropped: 0 })).toEqual(['renamed b<a']);
    expect(compare([c('id', 1), c('b', 2), c('z', 3)], [c('id'), c('a'), c('z')], { dropped: 0 })).toEqual([
      'renamed b<a',
    ]);
    // In the middle even after an old drop: an added column could not sit before z.
    expect(compare([c('id', 1), c('b', 3), c('z', 4)], [c('id'), c('a'), c('z')], { dropped: 1 })).toEqual([
      'renamed b<a',
    ]);
  });

  it('at the end, a dropped attnum between the last shared column and the new one is a drop and an add', () => {
    expect(compare([c('id', 1), c('b', 3)], [c('id'), c('a')], { dropped: 1 })).toEqual(['added b', 'dropped <a']);
    // An excluded column in between is live, not a dropped attnum: still a rename.
    expect(
      compare([c('id', 1), c('secret', 2), c('b', 3)], [c('id'), c('a')], { excluded: ['secret'], dropped: 0 }),
    ).toEqual(['renamed b<a']);
  });

  it('two new and two gone columns in one gap are not guessed into renames', () => {
    expect(compare([c('id', 1), c('c', 2), c('d', 3)], [c('id'), c('a'), c('b')], { dropped: 0 })).toEqual([
      'added c',
      'added d',
      'extra <a',
      'extra <b',
    ]);
  });

  it('a source column older than a shared one that the destination lacks was dropped there', () => {
    expect(compare([c('id', 1), c('a', 2), c('b', 3)], [c('id'), c('b')], { dropped: 0 })).toEqual(['lost a']);
  });

  it('compares type, NOT NULL and defaults of shared columns; a destination without a default is as created', () => {
    const src = [
      c('id', 1, { notNull: true, default: "nextval('public.t_id_seq'::regclass)" }),
      c('n', 2, { type: 'bigint' }),
      c('s', 3, { notNull: true }),
      c('d', 4, { default: '5' }),
    ];
    const dst = [c('id', undefined, { notNull: true }), c('n'), c('s'), c('d', undefined, { default: '6' })];
    expect(compare(src, dst)).toEqual(['type n<n', 'not_null s<s', 'default d<d']);
  });

  it('a generated column must keep its expression', () => {
    const gen = (e: string) => c('g', 2, { generated: true, default: e });
    expect(compare([c('id', 1), gen('(id * 2)')], [c('id'), gen('(id * 2)')])).toEqual([]);
    expect(compare([c('id', 1), gen('(id * 3)')], [c('id'), gen('(id * 2)')])).toEqual(['default g<g']);
  });

  it('leaves excluded columns out on both sides (an adopted destination may keep them)', () => {
    expect(
      compare([c('id', 1), c('secret', 2)], [c('id'), c('secret', undefined, { type: 'text' })], {
        excluded: ['secret'],
      }),
    ).toEqual([]);
  });
});

describe('relationDrift (what the worker sees)', () => {
  const t = { source: 'public.users', destination: 'public.users_copy' };
  const cols = (...names: string[]) => names.map((n) => ({ name: n, type: n === 'id' ? 'bigint' : 'text' }));

  it('is null when the sent columns fit the destination, excluded columns and constraints aside', () => {
    const destination = [
      { name: 'id', type: 'bigint', notNull: true, default: null },
      { name: 'name', type: 'text' },
      { name: 'secret', type: 'text' },
    ];
    expect(relationDrift(t, cols('id', 'name'), destination, ['secret'])).toBeNull();
  });

  it('MR150 for a sent column the destination lacks, with a unified diff', () => {
    const d = relationDrift(t, [...cols('id', 'name'), { name: 'extra', type: 'integer' }], cols('id', 'name'), []);
    expect(d).toEqual({
      code: 'MR150',
      message:
        'source public.users has column extra integer that destination public.users_copy lacks (added on the source after the table was copied): the stream cannot apply its rows',
      hint: expect.stringContaining('on the destination: ALTER TABLE public.users_copy ADD COLUMN extra integer;'),
      diff: [
        '--- public.users (source, as the stream sends it)',
        '+++ public.users_copy (destination)',
        '@@ -1,5 +1,4 @@',
        ' CREATE TABLE public.users_copy (',
        '   id bigint,',
        '   name text,',
        '-  extra integer,',
        ' );',
        '',
      ].join('\n'),
    });
  });

  it('MR152 from names alone: one name gone and one new at the same position', () => {
    const d = relationDrift(t, cols('id', 'full_name', 'age'), cols('id', 'name', 'age'), []);
    expect(d?.code).toBe('MR152');
    expect(d?.hint).toBe('on the destination: ALTER TABLE public.users_copy RENAME COLUMN name TO full_name;');
  });

  it('MR151 for a destination column no longer sent, MR153 for another type', () => {
    expect(relationDrift(t, cols('id'), cols('id', 'name'), [])?.code).toBe('MR151');
    const d = relationDrift(t, [{ name: 'id', type: 'numeric' }], cols('id'), []);
    expect(d?.code).toBe('MR153');
    expect(d?.message).toBe(
      'column type differs: id is numeric on source public.users and bigint on destination public.users_copy',
    );
    // A type the worker could not name is not compared.
    expect(relationDrift(t, [{ name: 'id', type: '' }], cols('id'), [])).toBeNull();
  });

  it('with several differences takes the lowest code and names them all', () => {
    const d = relationDrift(
      t,
      [
        { name: 'id', type: 'numeric' },
        { name: 'extra', type: 'text' },
      ],
      cols('id', 'name', 'z'),
      [],
    );
    expect(d?.code).toBe('MR150');
    expect(d?.message).toContain('has column extra text');
    expect(d?.message).toContain('column type differs: id is numeric');
    expect(d?.message).toContain(
      'destination public.users_copy has columns name, z that source public.users no longer has',
    );
  });
});

/** A mirror `m` of public.t, applied and streaming; `change` then alters the source or the destination. */
function scene(
  change: (s: { src: LiveTable; dst: LiveTable; srcPeer: PeerLive; dstPeer: PeerLive }) => void,
  m?: Mirror,
) {
  const mm = m ?? mirror('m', ['public.t']);
  const columns = numbered([col('id', 'bigint', { notNull: true }), col('name', 'text')]);
  const srcPeer = livePeer('prod', [table('public.t', columns, { droppedColumns: 0 })]);
  const dstPeer = livePeer('staging');
  applied(mm, srcPeer, dstPeer, ['public.t']);
  const k = 'public\u0000t';
  // applied() shares the source's arrays with the destination: give each its own.
  dstPeer.tables[k] = {
    ...dstPeer.tables[k],
    columns: columns.map((x) => ({ ...x })),
    hasGuard: true,
    guardState: 'enabled',
  };
  srcPeer.tables[k] = { ...srcPeer.tables[k], columns: columns.map((x) => ({ ...x })) };
  change({ src: srcPeer.tables[k], dst: dstPeer.tables[k], srcPeer, dstPeer });
  return buildPlan(config([mm]), { peers: { prod: srcPeer, staging: dstPeer } }, { selected: null, createdBy: 't' });
}
const codes = (p: Plan) => p.diagnostics.map((d) => d.code);
const added = (name: string, attnum: number, over: Partial<LiveColumn> = {}) =>
  col(name, 'integer', { attnum, ...over });

describe('mirrors plan on a ready table', () => {
  it('nothing to report right after apply, also for a source default the destination never gets', () => {
    const p = scene(({ src }) => {
      src.columns[0] = { ...src.columns[0], hasDefault: true, default: "nextval('public.t_id_seq'::regclass)" };
    });
    expect(p.diagnostics).toEqual([]);
    expect(planExitCode(p, true)).toBe(0);
    expect(renderPlanText(p)).toBe('No changes. The mirrors match the configuration.\n');
  });

  it('ADD COLUMN extra int DEFAULT 5 on the source, not reached by the stream yet: MR150 saying what the worker will do, with a unified diff; exit 2, never "No changes"', () => {
    const p = scene(({ src }) => src.columns.push(added('extra', 3, { hasDefault: true, default: '5', missing: '5' })));
    expect(codes(p)).toEqual(['MR150']);
    const [d] = p.diagnostics;
    expect(d.severity).toBe('warning');
    expect(d.address).toBe('mirror.m.table.public.t');
    expect(d.hint).toContain(
      "when the stream reaches this change, the worker stops right before its first row and records the DDL (add column extra integer; rows already there read '5', as on the source), which the next `mirrors plan` proposes",
    );
    expect(d.hint).toContain('Do not alter the destination by hand');
    expect(d.diff).toBe(
      [
        '--- prod:public.t (source, as mirrored)',
        '+++ staging:public.t (destination)',
        '@@ -1,7 +1,6 @@',
        ' CREATE TABLE public.t (',
        '   id bigint NOT NULL,',
        '   name text,',
        '-  extra integer DEFAULT 5,',
        '   PRIMARY KEY (id),',
        ' );',
        ' TRIGGER mirrors_read_only (the read-only guard): enabled',
        '',
      ].join('\n'),
    );
    expect(planExitCode(p, true)).toBe(2);
    const text = renderPlanText(p);
    expect(text).not.toContain('No changes');
    expect(text).toContain('Schema drift in 1 table (MR150). No action is planned for it: see the diagnostics above.');
    expect(text).toContain('      -  extra integer DEFAULT 5,\n');
  });

  it('DROP COLUMN on the source: MR151', () => {
    const p = scene(({ src }) => {
      src.columns.splice(1, 1);
      src.droppedColumns = 1;
    });
    expect(codes(p)).toEqual(['MR151']);
    expect(p.diagnostics[0].hint).toContain('records the DDL (drop column name, dropped on the source)');
    expect(p.diagnostics[0].diff).toContain('\n+  name text,\n');
  });

  it('RENAME COLUMN on the source: MR152 (same attnum)', () => {
    const p = scene(({ src }) => (src.columns[1] = { ...src.columns[1], name: 'full_name' }));
    expect(codes(p)).toEqual(['MR152']);
    expect(p.diagnostics[0].hint).toContain('records the DDL (rename column name to full_name)');
    expect(p.diagnostics[0].diff).toContain('\n-  full_name text,\n+  name text,\n');
  });

  it('ALTER COLUMN TYPE on the source: MR153; NOT NULL and a destination default: MR154, MR155 warnings, exit 2', () => {
    expect(codes(scene(({ src }) => (src.columns[1] = { ...src.columns[1], type: 'character varying(20)' })))).toEqual([
      'MR153',
    ]);
    const p = scene(({ dst }) => {
      dst.columns[1] = { ...dst.columns[1], notNull: true, hasDefault: true, default: "'x'::text" };
    });
    expect(codes(p)).toEqual(['MR154', 'MR155']);
    expect(p.diagnostics.map((d) => d.severity)).toEqual(['warning', 'warning']);
    expect(p.diagnostics[0].message).toContain('the first NULL written there stops the stream');
    expect(p.actions).toEqual([]);
    expect(planExitCode(p, true)).toBe(2);
    expect(planExitCode(p, false)).toBe(0);
    expect(renderPlanText(p)).toContain('Schema drift in 1 table (MR154, MR155).');
    // One table, one diff: shown under the first diagnostic only.
    expect(renderPlanText(p)).toContain('diff: as shown above for MR154');
  });

  it('a generated column whose expression changed is MR155; a destination default equal to the source is none', () => {
    const gen = (e: string) => col('g', 'bigint', { attnum: 3, generated: 's', hasDefault: true, default: e });
    const p = scene(({ src, dst }) => {
      src.columns.push(gen('(id * 3)'));
      dst.columns.push(gen('(id * 2)'));
    });
    expect(codes(p)).toEqual(['MR155']);
    expect(p.diagnostics[0].hint).toContain('ALTER TABLE public.t ALTER COLUMN g SET EXPRESSION AS ((id * 3));');
    expect(p.diagnostics[0].diff).toContain('\n-  g bigint GENERATED ALWAYS AS ((id * 3)) STORED,\n');
    const same = scene(({ src, dst }) => {
      src.columns[1] = { ...src.columns[1], hasDefault: true, default: "'x'::text" };
      dst.columns[1] = { ...dst.columns[1], hasDefault: true, default: "'x'::text" };
    });
    expect(same.diagnostics).toEqual([]);
  });

  it('an excluded column kept on an adopted destination is no drift', () => {
    const base = mirror('m', ['public.t']);
    const m = { ...base, tables: [{ ...base.tables[0], exclude_columns: ['secret'] }] };
    const p = scene(({ src, dst, srcPeer, dstPeer }) => {
      src.columns.push(col('secret', 'text', { attnum: 3 }));
      dst.columns.push(col('secret', 'integer', { attnum: 3 }));
      dstPeer.catalog.tables[0].excludeColumns = ['secret'];
      srcPeer.publications.mirrors_m.tables[0].columns = ['id', 'name'];
    }, m);
    expect(p.diagnostics).toEqual([]);
  });

  it('a collation changed on the source is a type difference', () => {
    expect(codes(scene(({ src }) => (src.columns[1] = { ...src.columns[1], collation: '"C"' })))).toEqual(['MR153']);
  });

  it('MR157 for a ready table whose source is gone; renamed when the publication still holds another name', () => {
    const dropped = scene(({ srcPeer }) => {
      delete srcPeer.tables['public\u0000t'];
      srcPeer.publications.mirrors_m.tables = [];
    });
    expect(codes(dropped)).toEqual(['MR157']);
    expect(dropped.diagnostics[0].message).toContain('it was dropped');
    const renamed = scene(({ srcPeer }) => {
      srcPeer.tables['public\u0000t2'] = { ...srcPeer.tables['public\u0000t'], name: 't2' };
      delete srcPeer.tables['public\u0000t'];
      srcPeer.publications.mirrors_m.tables = [{ schema: 'public', name: 't2', columns: null, rowFilter: null }];
    });
    expect(codes(renamed)).toEqual(['MR157']);
    expect(renamed.diagnostics[0].message).toContain(
      'still publishes public.t2, which no mapping names: it was renamed',
    );
    expect(renamed.diagnostics[0].hint).toContain('point source_table at public.t2');
    expect(renamed.diagnostics[0].diff).toContain('-(no table public.t on peer prod)\n');
  });

  it('MR110, not MR157, for a table that is not streaming yet', () => {
    const p = scene(({ srcPeer, dstPeer }) => {
      delete srcPeer.tables['public\u0000t'];
      dstPeer.catalog.tables[0].state = 'pending';
    });
    expect(codes(p)).toEqual(['MR110']);
  });

  it('MR158 for a destination table gone, a column dropped on it, a column added to it, its key dropped', () => {
    expect(codes(scene(({ dstPeer }) => delete dstPeer.tables['public\u0000t']))).toEqual(['MR158']);
    const lost = scene(({ src, dst }) => {
      src.columns.push(added('z', 3));
      dst.columns = [dst.columns[0], { ...src.columns[2] }];
    });
    expect(codes(lost)).toEqual(['MR158']);
    expect(lost.diagnostics[0].message).toContain(
      'it lacks column name, which the source had when the table was copied',
    );
    const extra = scene(({ dst }) => dst.columns.push(added('note', 3)));
    expect(codes(extra)).toEqual(['MR158']);
    expect(extra.diagnostics[0].hint).toBe('on the destination: ALTER TABLE public.t DROP COLUMN note;');
    const keyless = scene(({ dst }) => {
      dst.indexes = [];
      dst.primaryKey = null;
    });
    expect(codes(keyless)).toEqual(['MR158']);
    expect(keyless.diagnostics[0].hint).toBe('on the destination: ALTER TABLE public.t ADD PRIMARY KEY (id);');
    expect(keyless.diagnostics[0].diff).toContain('\n-  PRIMARY KEY (id),\n');
  });

  it('MR159 for a missing guard, beside the action that creates it again', () => {
    const p = scene(({ dst }) => (dst.hasGuard = false));
    expect(codes(p)).toEqual(['MR159']);
    expect(p.actions.map((a) => `${a.op} ${a.address}`)).toEqual(['update mirror.m.table.public.t']);
    expect(planExitCode(p, true)).toBe(2);
    expect(p.diagnostics[0].diff).toContain(
      '-TRIGGER mirrors_read_only (the read-only guard): enabled\n+TRIGGER mirrors_read_only (the read-only guard): missing\n',
    );
  });

  it('MR159 for a disabled guard, and an update that enables it (which needs the owner)', () => {
    const p = scene(({ dst }) => (dst.guardState = 'disabled'));
    expect(codes(p)).toEqual(['MR159']);
    const [a] = p.actions;
    expect((a.details as { sql: string[] }).sql).toEqual([
      'ALTER TABLE "public"."t" ENABLE TRIGGER "mirrors_read_only"',
    ]);
    expect(renderPlanText(p)).toContain(
      'Plan: 0 to create, 1 to update, 0 to replace, 0 to delete. Schema drift in 1 table (MR159).',
    );
    const notOwner = scene(({ dst }) => {
      dst.guardState = 'always';
      dst.owned = false;
      dst.owner = 'app';
    });
    expect(codes(notOwner)).toEqual(['MR127', 'MR159']);
    expect(notOwner.diagnostics[1].message).toContain('fires for the worker');
  });

  it('MR156 for a source column the publication column list hides (PostgreSQL 15+ with exclude_columns)', () => {
    const base = mirror('m', ['public.t']);
    const m = { ...base, tables: [{ ...base.tables[0], exclude_columns: ['secret'] }] };
    const p = scene(({ src, dst, srcPeer, dstPeer }) => {
      src.columns.push(col('secret', 'text', { attnum: 3 }), added('extra', 4));
      dst.columns.push(added('extra', 3));
      dstPeer.catalog.tables[0].excludeColumns = ['secret'];
      srcPeer.publications.mirrors_m.tables[0].columns = ['id', 'name'];
    }, m);
    expect(codes(p)).toEqual(['MR156']);
    expect(p.diagnostics[0].diff).toBe(
      [
        '--- prod:public.t columns (source, without exclude_columns)',
        '+++ prod:publication mirrors_m column list for public.t',
        '@@ -1,3 +1,2 @@',
        ' id',
        ' name',
        '-extra',
        '',
      ].join('\n'),
    );
    // The same plan publishes it.
    expect(p.actions.map((a) => `${a.op} ${a.address}`)).toEqual(['update mirror.m.publication']);
  });

  it('markdown shows each drifted table once, in a diff block, under the codes that share it', () => {
    const p = scene(({ src, dst }) => {
      src.columns.push(added('extra', 3));
      dst.guardState = 'disabled';
    });
    const md = renderPlanMarkdown(p);
    expect(md).toContain('<details><summary>MR150, MR159 `mirror.m.table.public.t`: source and destination</summary>');
    expect(md.match(/```diff\n--- prod:public.t/g)).toHaveLength(1);
    expect(md).not.toContain('No changes');
  });
});

describe('drift codes', () => {
  it('are errors when nothing mirrors does gets the stream through them, warnings otherwise (a source schema change is fitted where the stream reaches it)', () => {
    const severity = (code: keyof typeof DIAGNOSTICS) => DIAGNOSTICS[code].severity;
    expect(['MR157', 'MR158'].map((x) => severity(x as 'MR150'))).toEqual(Array(2).fill('error'));
    expect(
      ['MR150', 'MR151', 'MR152', 'MR153', 'MR154', 'MR155', 'MR156', 'MR159'].map((x) => severity(x as 'MR150')),
    ).toEqual(Array(8).fill('warning'));
  });
});

describe('text colors', () => {
  const was = kleur.enabled;
  beforeAll(() => (kleur.enabled = true));
  afterAll(() => (kleur.enabled = was));
  it('paints removed lines red and added lines green', () => {
    const text = renderPlanText(scene(({ src }) => (src.columns[1] = { ...src.columns[1], name: 'full_name' })));
    expect(text).toContain(kleur.red('-  full_name text,'));
    expect(text).toContain(kleur.green('+  name text,'));
  });
});
