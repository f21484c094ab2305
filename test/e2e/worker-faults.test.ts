/**
 * `mirrors run` under faults of its peers (issue 8, item 7): it resumes within seconds after each restart
 * of the source or the destination, also after earlier faults in the same process (the backoff resets once a
 * session streams). Recovery times are measured and printed.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'wf');

describe('mirrors run under faults', () => {
  it('resumes within 5 s of every source or destination restart, the sixth as fast as the first', async () => {
    const m = await mirrorSetup('recover', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/recover: Following/);
    let id = 0;
    const times: { peer: string; ms: number }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const peer of ['src', 'dst'] as const) {
        // Down for a few seconds, so the worker's reconnect attempts fail a few times and its backoff grows.
        await clusters[peer].kill();
        await new Promise((r) => setTimeout(r, 3_000));
        await clusters[peer].start();
        const back = Date.now();
        await m.src(`INSERT INTO t VALUES (${++id})`);
        await m.caughtUp('20 seconds');
        times.push({ peer: peer === 'src' ? 'source' : 'destination', ms: Date.now() - back });
      }
    }
    console.log(`recovery after each restart (ms): ${times.map((t) => `${t.peer} ${t.ms}`).join(', ')}`);
    for (const t of times) expect(t.ms, `${t.peer}`).toBeLessThan(5_000);
    await m.expectSame('SELECT * FROM t');
    expect(await w.stop()).toBe(0);
  });
});
