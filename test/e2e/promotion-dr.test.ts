/**
 * Disaster recovery end to end (issue 9): the source dies under load. The plan promotes without it only as an
 * unfenced promotion with a loss estimate; apply refuses it without --allow-data-loss and changes nothing; with
 * it, the destination is the primary (defaults and sequences from what the worker recorded). The old source,
 * restarted later, can never resume the mirror: the worker refuses it, and the next plan fences it and drops
 * what the mirror left there.
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

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'dr');

describe('promotion without the source', () => {
  it('the source is gone: refused without --allow-data-loss, promoted with it and the loss estimated; the old source, back, cannot resume and is fenced', async () => {
    const m = await mirrorSetup('dr', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const w = await m.start();
    await w.waitForLog(/dr: Following/);
    const load = writeLoad(clusters.src.url(m.db), 5);
    // Long enough for the worker to record the source's definitions and a commit rate (5 s of watching).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [r] = await m.dst(
        `SELECT source_facts IS NOT NULL AS facts, (source_pulse ->> 'commits_per_s')::float AS rate FROM mirrors.mirrors WHERE name = 'dr'`,
      );
      if (r.facts && r.rate > 0) break;
      if (Date.now() > deadline)
        throw new Error(`the worker recorded nothing of the source: ${JSON.stringify(r)}\n${w.logs()}`);
      await new Promise((res) => setTimeout(res, 500));
    }

    // The source dies under load (no shutdown checkpoint, connections cut), and stays down.
    await clusters.src.kill();
    const acked = await load.stop().catch(() => load.count());
    const [{ n: applied }] = await m.dst('SELECT count(*)::int AS n FROM history');
    // The one writer's last commit may be applied with its acknowledgement cut by the crash.
    expect(applied).toBeLessThanOrEqual(acked + 1);

    m.rewrite('    promote: true\n');
    const plan = await m.cli('plan', '--detailed-exitcode');
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    expect(plan.stdout).toMatch(/MR180/);
    expect(plan.stdout).toMatch(/WITHOUT a fence/);
    expect(plan.stdout).toMatch(
      /(about \d+ transactions?|an unknown number of transactions) \(.*\) committed on peer prod after/,
    );
    expect(plan.stdout).toMatch(/--allow-data-loss/);
    const json = JSON.parse((await m.cli('plan', '--format', 'json')).stdout);
    const action = json.actions.find((a: { kind: string }) => a.kind === 'promotion');
    expect(action.reason_code).toBe('promotion_without_source');
    const loss = action.details.without_source.loss;
    expect(loss.applied_through).not.toBeNull();
    expect(loss.commits_per_s).toBeGreaterThan(0);
    console.log(
      `dr: ${acked} transactions acknowledged by the source, ${applied} applied; estimate: ${loss.transactions} transactions, ${loss.window_ms} ms, ${loss.unapplied_wal_bytes} bytes of WAL, ${loss.commits_per_s}/s`,
    );

    // Every other consent does not stand in for this one.
    const refused = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--format', 'json');
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/DATA_LOSS_NOT_ALLOWED/);
    const [before] = await m.dst(`SELECT status, promoted_at FROM mirrors.mirrors WHERE name = 'dr'`);
    expect(before.promoted_at).toBeNull();
    await expect(m.dst(`INSERT INTO history (aid, delta) VALUES (1, 1)`)).rejects.toThrow(/MIRROR_READ_ONLY/);

    const applyRun = await m.cli(
      'apply',
      '--auto-approve',
      '--allow-irreversible',
      '--allow-data-loss',
      '--format',
      'json',
    );
    expect(applyRun.code, applyRun.stdout + applyRun.stderr).toBe(0);
    const steps = applyRun.stdout
      .split('\n')
      .filter((l) => l.includes('"promotion_step"'))
      .map((l) => JSON.parse(l).step);
    expect(steps).toEqual(['point_of_no_return', 'promotion_complete']);
    const [after] = await m.dst(`SELECT status, promotion FROM mirrors.mirrors WHERE name = 'dr'`);
    expect(after.status).toBe('Promoted');
    expect(after.promotion.unfenced).toBe(true);
    expect(after.promotion.loss_estimate).toEqual(loss);
    await w.waitForLog(/dr: Promoted/, 15_000);

    // An application insert works on the new primary: default and sequence restored from the record.
    const [row] = await m.dst(
      `INSERT INTO history (aid, delta) VALUES (1, 1) RETURNING id::text AS id, at IS NOT NULL AS has_at`,
    );
    expect(row.has_at).toBe(true);
    const [{ max }] = await m.dst(`SELECT max(id)::text AS max FROM history WHERE id <> $1::bigint`, [row.id]);
    expect(BigInt(row.id)).toBeGreaterThan(BigInt(max));

    // The old source comes back: the worker does not resume it (the catalog says Promoted)...
    await clusters.src.start();
    const w2 = await m.start(['--no-metrics']);
    await w2.waitForLog(/dr: promoted; this worker stops streaming it/, 15_000);
    // With nothing left to stream, `run` keeps running (a service manager would restart an exiting one in a loop).
    await w2.waitForLog(/every mirror is promoted: nothing left to stream/, 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(w2.child.exitCode).toBeNull();
    const [slot] = await m.src(`SELECT active FROM pg_replication_slots WHERE slot_name = 'mirrors_dr'`);
    expect(slot.active).toBe(false);
    // ...and every value its sequence handed out before it died is below the new primary's.
    const [{ last }] = await m.src(`SELECT last_value::text AS last FROM history_id_seq`);
    expect(BigInt(row.id)).toBeGreaterThan(BigInt(last));

    // The next plan fences it and drops the slot and publication; then nothing is left to do.
    const finish = await m.cli('plan', '--detailed-exitcode');
    expect(finish.code, finish.stdout + finish.stderr).toBe(2);
    expect(finish.stdout).toMatch(/fence its 2 tables, drop its slot, drop its publication/);
    expect(finish.stdout).toMatch(/MR187/); // what it committed after the last applied transaction is only there
    expect(finish.stdout).toMatch(/pg_logical_slot_peek_binary_changes\('mirrors_dr'/);
    // Dropping the slot (which holds those changes) is irreversible: not without consent.
    expect((await m.cli('apply', '--auto-approve')).code).toBe(1);
    const done = await m.cli('apply', '--auto-approve', '--allow-irreversible');
    expect(done.code, done.stdout + done.stderr).toBe(0);
    await expect(m.src(`INSERT INTO history (aid, delta) VALUES (1, 1)`)).rejects.toThrow(/MIRROR_FENCED/);
    expect(await m.src(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'mirrors_dr'`)).toEqual([
      { n: 0 },
    ]);
    const again = await m.cli('plan', '--detailed-exitcode');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await w.stop()).toBe(0);
    expect(await w2.stop()).toBe(0);
  });

  it('a sync mirror (on_sync_loss: block) the source counted synchronous: the loss window is zero, and every acknowledged commit is there', async () => {
    const m = await mirrorSetup('ds', LOAD_TABLES_SQL, LOAD_TABLES_YAML, '    mode: sync\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'ds', 'Following');
    const listed = await m.cli('apply', '--auto-approve');
    expect(listed.code, listed.stdout + listed.stderr).toBe(0);
    const load = writeLoad(clusters.src.url(m.db), 2);
    try {
      // The worker's pulse (every 5 s) records that the source counts it synchronous.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [r] = await m.dst(
          `SELECT source_pulse -> 'sync' ->> 'state' AS state, (source_pulse ->> 'commits_per_s')::float AS rate FROM mirrors.mirrors WHERE name = 'ds'`,
        );
        if (r.state === 'quorum' && r.rate > 0) break;
        if (Date.now() > deadline) throw new Error(`no synchronous pulse: ${JSON.stringify(r)}\n${w.logs()}`);
        await new Promise((res) => setTimeout(res, 500));
      }
      await clusters.src.kill();
      const acked = await load.stop().catch(() => load.count());
      const [{ n: applied }] = await m.dst('SELECT count(*)::int AS n FROM history');
      // Every commit the source acknowledged is there (one more may have been applied whose ack was cut).
      expect(applied).toBeGreaterThanOrEqual(acked);

      m.rewrite('    mode: sync\n    promote: true\n');
      const plan = await m.cli('plan', '--format', 'json');
      const action = JSON.parse(plan.stdout).actions.find((a: { kind: string }) => a.kind === 'promotion');
      const loss = action.details.without_source.loss;
      expect(loss).toMatchObject({ window_ms: 0, transactions: 0 });
      expect(loss.synchronous).toMatch(/every commit the source acknowledged waited for this mirror/);
      const text = await m.cli('plan');
      expect(text.stdout).toMatch(/MR180/);
      expect(text.stdout).toMatch(/none that peer prod acknowledged/);
      console.log(`dr (sync): ${acked} acknowledged, ${applied} applied; loss window ${loss.window_ms} ms`);
      const promoted = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--allow-data-loss');
      expect(promoted.code, promoted.stdout + promoted.stderr).toBe(0);
      expect(await w.stop()).toBe(0);
    } finally {
      await load.stop().catch(() => 0);
      await clusters.src.start();
      await clusters.src.query('ALTER SYSTEM RESET synchronous_standby_names');
      await clusters.src.query('SELECT pg_reload_conf()');
    }
  });
});
