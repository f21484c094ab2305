/**
 * kill -9 of `mirrors apply` at every step of a promotion, then apply again (issue 9, item 8). The rule:
 * killed before the fence commits, the source takes writes again and nothing changed; killed after, the
 * source stays fenced and the next apply finishes the promotion. Never both sides writable, never a source
 * fenced with the promotion left unfinished once apply ran again; nothing acknowledged by the source is lost.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { useClusters } from '../support/clusters.js';
import { RUN_ENV, runningMirrors } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'pc');

const BEFORE_COMMIT = ['fence_acquired', 'fence_reached', 'fence_recorded'];
const AFTER_COMMIT = ['fence_committed', 'point_of_no_return'];

describe('a promotion killed at every step', () => {
  it.each([...BEFORE_COMMIT, ...AFTER_COMMIT])(
    'kill -9 after %s: the next apply finishes it, nothing lost, never two writable copies',
    async (step) => {
      const name = `crash_${step}`;
      const m = await mirrorSetup(name, `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
      const w = await m.start();
      await w.waitForLog(new RegExp(`${name}: Following`));
      await m.src('INSERT INTO t SELECT generate_series(1, 100)');
      await m.caughtUp();
      m.rewrite('    promote: true\n');
      const killed = await runCli(['apply', '--auto-approve', '--allow-irreversible'], {
        cwd: m.p.dir,
        env: { ...RUN_ENV, MIRRORS_INJECT_KILL_AFTER: step },
        timeoutMs: 60_000,
      });
      expect(killed.code, killed.stdout + killed.stderr).not.toBe(0);

      const fenced = await m.src('INSERT INTO t VALUES (101)').then(
        () => false,
        (err: Error) => {
          expect(err.message).toMatch(/MIRROR_FENCED/);
          return true;
        },
      );
      const [row] = await m.dst(`SELECT promoted_at IS NOT NULL AS promoted FROM mirrors.mirrors WHERE name = $1`, [
        name,
      ]);
      // The rule: before the fence's COMMIT the source is writable and nothing is promoted; after it the source
      // is fenced (and, once past the point of no return, the destination is the primary).
      expect(fenced).toBe(AFTER_COMMIT.includes(step));
      expect(row.promoted).toBe(step === 'point_of_no_return');
      if (!fenced) await m.caughtUp(); // the write the source took after the kill reaches the mirror first

      const again = await m.cli('apply', '--auto-approve', '--allow-irreversible');
      expect(again.code, again.stdout + again.stderr).toBe(0);
      const [after] = await m.dst(
        `SELECT promoted_at IS NOT NULL AS promoted, promotion->>'state' AS state FROM mirrors.mirrors WHERE name = $1`,
        [name],
      );
      expect(after).toEqual({ promoted: true, state: 'promoted' });
      await expect(m.src('INSERT INTO t VALUES (102)')).rejects.toThrow(/MIRROR_FENCED/);
      await m.dst('INSERT INTO t VALUES (1000)'); // the new primary takes writes
      await m.dst('DELETE FROM t WHERE id = 1000');
      await m.expectSame('SELECT * FROM t');
      expect(
        await m.src(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [`mirrors_${name}`]),
      ).toEqual([{ n: 0 }]);
      expect((await m.cli('plan', '--detailed-exitcode')).code).toBe(0);
      expect(await w.stop()).toBe(0);
    },
  );
});
