/**
 * A partitioned source table mirrored through its root (issue 11): a partition created on the source while the
 * mirror streams keeps flowing, with no plan or apply (the publication publishes via the root, so its changes
 * arrive as the root's). Full contents compared.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors, waitForCatalogStatus } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'part');

describe('a partitioned table', () => {
  it('keeps flowing through a partition created on the source mid-stream, rows moving between partitions included', async () => {
    const m = await mirrorSetup(
      'parted',
      `CREATE TABLE pt (id int NOT NULL, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
       CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
       INSERT INTO pt SELECT g, 'v' || g FROM generate_series(0, 99) g;`,
      '      - source_table: pt\n',
    );
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'parted', 'Following');
    await m.src('CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (100) TO (200)');
    await m.src(`INSERT INTO pt SELECT g, 'w' || g FROM generate_series(100, 149) g`);
    // Rows moving across partitions (a delete from one leaf and an insert into the other on the source).
    await m.src(`UPDATE pt SET id = id + 100, v = 'moved' WHERE id BETWEEN 50 AND 59`);
    await m.src('DELETE FROM pt WHERE id BETWEEN 120 AND 129');
    await m.src(`UPDATE pt SET v = 'late' WHERE id >= 140`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM pt');
    expect(await m.dst('SELECT count(*)::int AS n FROM pt')).toEqual([{ n: 140 }]);
    expect(await w.stop()).toBe(0);
  });
});
