/**
 * `--replace` (issue 11, Terraform's -replace): a table, or a whole mirror, copied again on request while the mirror
 * keeps streaming and keeps its slot.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import {
  LOAD_TABLES_SQL,
  LOAD_TABLES_YAML,
  runningMirrors,
  waitForCatalogStatus,
  writeLoad,
} from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'rp');

describe('--replace', () => {
  it('copies one table again under load, keeping the slot, while the other table streams; contents equal', async () => {
    const m = await mirrorSetup('rp', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'rp', 'Following');
    const load = writeLoad(clusters.src.url(m.db), 2);
    try {
      const [slot] = await m.src(
        `SELECT restart_lsn IS NOT NULL AS ok, xmin FROM pg_replication_slots WHERE slot_name = 'mirrors_rp'`,
      );
      expect(slot.ok).toBe(true);
      // A destination row someone changed by hand (past the guard): the copy repairs it.
      await m.dst(
        `SET session_replication_role = replica; DELETE FROM history WHERE id IN (SELECT id FROM history LIMIT 5)`,
      );
      const plan = await m.cli('plan', '--replace', 'mirror.rp.table.public.history', '--format', 'json');
      expect(plan.code, plan.stderr).toBe(0);
      const p = JSON.parse(plan.stdout);
      expect(p.replace).toEqual(['mirror.rp.table.public.history']);
      const replaced = p.actions.filter((a: { reason_code: string }) => a.reason_code === 'replace_requested');
      expect(replaced.map((a: { address: string }) => a.address)).toEqual(['mirror.rp.table.public.history']);
      expect(p.actions.some((a: { kind: string }) => a.kind === 'slot')).toBe(false);
      const text = await m.cli('plan', '--replace', 'mirror.rp.table.public.history');
      expect(text.stdout).toMatch(/-\/\+ mirror\.rp\.table\.public\.history \[disruptive\]/);
      expect(text.stdout).toMatch(/readers see it empty until the copy ends/);

      const before = load.count();
      const applied = await m.cli('apply', '--replace', 'mirror.rp.table.public.history', '--auto-approve');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      expect(load.count()).toBeGreaterThan(before); // the source kept writing
      const [after] = await m.src(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'mirrors_rp'`);
      expect(after.n).toBe(1);
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await load.stop();
    }
    await m.caughtUp();
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    // The stream never stopped: the worker is still the same process, Following.
    expect(w.child.exitCode).toBeNull();
    await waitForCatalogStatus(m.dst, 'rp', 'Following');
    // Nothing left to do afterwards; a name that is not a copied table is an error that changes nothing.
    expect((await m.cli('plan', '--detailed-exitcode')).code).toBe(0);
    const wrong = await m.cli('plan', '--replace', 'mirror.rp.table.public.nope');
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/MR139/);
    const saved = await m.cli('apply', 'plan.json', '--replace', 'mirror.rp');
    expect(saved.code).toBe(1);
    expect(saved.stderr).toMatch(/--replace cannot be given with a saved plan/);
    expect(await w.stop()).toBe(0);
  });
});
