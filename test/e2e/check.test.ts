/**
 * `mirrors check` (issue 12) against live mirrors, as a scheduled job runs it: clean, config drift, no worker, a
 * disabled read-only guard, destination rows a sampled verify finds, and "apply in progress" (not drift) while an
 * apply holds the mirror's lock. Each condition's exit code; the JSON's per-mirror issue body with its marker.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import {
  LOAD_TABLES_SQL,
  LOAD_TABLES_YAML,
  runningMirrors,
  until,
  waitForCatalogStatus,
} from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'ck');

const BIG_SQL = `${LOAD_TABLES_SQL}
CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 300000) i;`;
const TABLES_YAML = `${LOAD_TABLES_YAML}      - source_table: big\n`;

type Check = {
  mirror: string;
  state: string;
  findings: { kind: string; code?: string; message: string }[];
  issue: { marker: string; title: string; body: string };
};
const checkOf = (stdout: string): Check => JSON.parse(stdout).mirrors[0];

describe('mirrors check', () => {
  it('clean, then config drift, rows a sampled verify finds and a disabled guard: exit 0, then 2 with each named', async () => {
    const m = await mirrorSetup('ck_a', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'ck_a', 'Following');
    const clean = await m.cli('check', '--verify-sample', '1', '--format', 'json');
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(checkOf(clean.stdout)).toMatchObject({ state: 'clean', findings: [] });
    expect(checkOf(clean.stdout).issue.marker).toBe('<!-- mirrors:check mirror=ck_a -->');

    m.rewrite('    max_batch_size: 77\n');
    await m.dst(
      `SET session_replication_role = replica; UPDATE accounts SET abalance = 5 WHERE aid = 3; RESET session_replication_role`,
    );
    const r = await m.cli('check', '--verify-sample', '1', '--format', 'json');
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const c = checkOf(r.stdout);
    expect(c.state).toBe('attention');
    expect(c.findings.map((f) => f.kind).sort()).toEqual(['config_drift', 'data_drift']);
    expect(c.findings.find((f) => f.kind === 'config_drift')!.message).toMatch(/max_batch_size/);
    expect(c.findings.find((f) => f.kind === 'data_drift')!.message).toMatch(
      /accounts different from its source: rows 1 changed \(aid 3\)/,
    );
    expect(c.issue.title).toBe('mirrors: ck_a needs a look (config drift, data differs)');
    expect(c.issue.body).toContain('<!-- mirrors:check mirror=ck_a -->');
    expect(c.issue.body).toMatch(/\[MR165\]\(https:\/\/[^)]+\/docs\/diagnostics\.md#mr165\)/);
    // The run just made is what the next plan reads: the same finding, once.
    const md = await m.cli('check', '--format', 'markdown', '--docs-url', 'https://docs.example/mirrors/');
    expect(md.code).toBe(2);
    expect(md.stdout).toContain('[MR165](https://docs.example/mirrors/diagnostics.md#mr165)');
    const text = await m.cli('check', '--verify-sample', '1');
    expect(text.stdout).toMatch(/! mirror ck_a: 2 to look at \(Following\)/);

    // A disabled read-only guard (the worker also stops at it, so the status may say Failed by then).
    await m.dst('ALTER TABLE history DISABLE TRIGGER mirrors_read_only');
    const guard = await m.cli('check', '--format', 'json');
    expect(guard.code).toBe(2);
    expect(checkOf(guard.stdout).findings.map((f) => f.kind)).toContain('guard');
    await m.dst('ALTER TABLE history ENABLE TRIGGER mirrors_read_only');
    expect(await w.stop()).toBe(0);

    // No worker: nothing streams the mirror.
    const stopped = await m.cli('check', '--format', 'json');
    expect(stopped.code).toBe(2);
    expect(checkOf(stopped.stdout).findings.map((f) => f.kind)).toEqual(expect.arrayContaining(['status', 'worker']));
  });

  it('"apply in progress" while an apply copies a table, not drift; exit 0', async () => {
    const m = await mirrorSetup('ck_b', BIG_SQL, TABLES_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'ck_b', 'Following');
    const apply = m.cli('apply', '--replace', 'mirror.ck_b.table.public.big', '--auto-approve');
    await until(
      'the copy to start',
      async () => (await m.dst(`SELECT state FROM mirrors.tables WHERE dest_table = 'big'`))[0]?.state === 'copying',
      60_000,
    );
    m.rewrite('    max_batch_size: 77\n');
    const r = await m.cli('check', '--format', 'json');
    expect((await apply).code).toBe(0);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const c = checkOf(r.stdout);
    expect(c).toMatchObject({ state: 'apply_in_progress', findings: [] });
    const after = await m.cli('check');
    expect(after.code).toBe(2);
    expect(after.stdout).toMatch(/config drift: the plan has 1 change/);
    expect(await w.stop()).toBe(0);
  });
});
