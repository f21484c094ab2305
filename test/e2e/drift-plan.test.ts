/**
 * Schema drift seen by `mirrors plan` against real clusters: a streaming mirror's source is altered in turn (a
 * column added with a default, dropped, renamed, retyped; the table renamed) and its destination's guard dropped
 * and disabled. Each time `plan --detailed-exitcode` exits as `mirrors plan --help` says (1 for drift nothing
 * mirrors does gets the stream through, 2 for warnings, such as a source schema change the worker fits where the
 * stream reaches it), prints the code, what the worker will do and the unified diff, and `--format json` carries
 * them; then the destination is fixed by hand (no rows are in flight: no worker runs) and the plan is clean again.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { mirrorProjects } from '../support/mirror-project.js';

const clusters = useClusters(['src', 'dst']);
const { databases, project, cli } = mirrorProjects(clusters, 'drift');

type Json = { diagnostics: { code: string; severity: string; address: string; hint: string; diff?: string }[] };

describe('plan --detailed-exitcode on a streaming mirror', () => {
  it('reports each drift with its code and diff, and is clean again once the destination is fixed', async () => {
    const db = await databases(`CREATE TABLE t (id bigint PRIMARY KEY, name text, n int);
      INSERT INTO t SELECT g, 'n' || g, g FROM generate_series(1, 10) g;`);
    const p = project(db, `  drift1: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const applied = await cli(p, 'apply', '--auto-approve');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const onSource = (sql: string) => clusters.src.query(sql, [], db);
    const onDestination = (sql: string) => clusters.dst.query(sql, [], db);

    const clean = async () => {
      const r = await cli(p, 'plan', '--detailed-exitcode');
      // (The test clusters leave max_slot_wal_keep_size unlimited: MR105 is the one diagnostic.)
      expect(r.stdout.endsWith('\nNo changes. The mirrors match the configuration.\n')).toBe(true);
      expect(r.stdout).not.toMatch(/MR15\d/);
      expect(r.code).toBe(0);
    };
    /** The plan reports `code` with these diff lines, in text and JSON, and exits `exit`. */
    const drift = async (code: string, exit: number, diffLines: string[]) => {
      const text = await cli(p, 'plan', '--detailed-exitcode');
      expect(text.stderr).toBe('');
      expect(text.code).toBe(exit);
      expect(text.stdout).toContain(`${exit === 1 ? 'error' : 'warning'} ${code}  mirror.drift1.table.public.t`);
      expect(text.stdout).toContain(
        '      --- prod:public.t (source, as mirrored)\n      +++ staging:public.t (destination)\n',
      );
      for (const l of diffLines) expect(text.stdout).toContain(`      ${l}\n`);
      expect(text.stdout).not.toContain('No changes');
      const json = await cli(p, 'plan', '--detailed-exitcode', '--format', 'json');
      expect(json.code).toBe(exit);
      const d = (JSON.parse(json.stdout) as Json).diagnostics.find((x) => x.code === code)!;
      expect(d.address).toBe('mirror.drift1.table.public.t');
      for (const l of diffLines) expect(d.diff).toContain(`\n${l}\n`);
      return d;
    };

    await clean();

    await onSource('ALTER TABLE t ADD COLUMN extra int DEFAULT 5');
    const added = await drift('MR150', 2, ['-  extra integer DEFAULT 5,']);
    // The source's missing value, read from its catalog: what the worker will give the rows already there.
    expect(added.hint).toContain(
      "records the DDL (add column extra integer; rows already there read '5', as on the source)",
    );
    await onDestination('ALTER TABLE public.t ADD COLUMN extra integer DEFAULT 5');
    await clean();

    await onSource('ALTER TABLE t DROP COLUMN extra');
    const dropped = await drift('MR151', 2, ['+  extra integer DEFAULT 5,']);
    expect(dropped.hint).toContain('records the DDL (drop column extra, dropped on the source)');
    await onDestination('ALTER TABLE public.t DROP COLUMN extra');
    await clean();

    await onSource('ALTER TABLE t RENAME COLUMN name TO full_name');
    const renamed = await drift('MR152', 2, ['-  full_name text,', '+  name text,']);
    expect(renamed.hint).toContain('records the DDL (rename column name to full_name)');
    await onDestination('ALTER TABLE public.t RENAME COLUMN name TO full_name');
    await clean();

    await onSource('ALTER TABLE t ALTER COLUMN n TYPE bigint');
    const retyped = await drift('MR153', 2, ['-  n bigint,', '+  n integer,']);
    expect(retyped.hint).toContain('change the type of n from integer to bigint, then a copy of the table');
    await onDestination('ALTER TABLE public.t ALTER COLUMN n TYPE bigint');
    await clean();

    const guardLine = (state: string) => `TRIGGER mirrors_read_only (the read-only guard): ${state}`;
    await onDestination('DROP TRIGGER mirrors_read_only ON public.t');
    await drift('MR159', 2, [`-${guardLine('enabled')}`, `+${guardLine('missing')}`]);
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    await clean();

    await onDestination('ALTER TABLE public.t DISABLE TRIGGER mirrors_read_only');
    await drift('MR159', 2, [`-${guardLine('enabled')}`, `+${guardLine('disabled')}`]);
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    expect(
      await onDestination(`SELECT tgenabled::text AS e FROM pg_trigger WHERE tgname = 'mirrors_read_only'`),
    ).toEqual([{ e: 'O' }]);
    await clean();

    // The source table renamed: it stays in the publication under its new name.
    await onSource('ALTER TABLE t RENAME TO t_renamed');
    const r = await cli(p, 'plan', '--detailed-exitcode');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR157  mirror.drift1.table.public.t');
    expect(r.stdout).toContain('still publishes public.t_renamed, which no mapping names: it was renamed');
    expect(r.stdout).not.toContain('MR110');
  });
});
