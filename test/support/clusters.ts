/** Start named clusters once per test file (in parallel) and stop them when the file is done. */
import { afterAll, beforeAll } from 'vitest';
import { startCluster, type Cluster, type ClusterOptions } from '../../src/devtools/cluster.js';

export function useClusters<N extends string>(names: N[], opts: Omit<ClusterOptions, 'name'> = {}): Record<N, Cluster> {
  const clusters = {} as Record<N, Cluster>;
  beforeAll(async () => {
    const started = await Promise.allSettled(names.map((name) => startCluster({ ...opts, name })));
    started.forEach((r, i) => {
      if (r.status === 'fulfilled') clusters[names[i]] = r.value;
    });
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  afterAll(async () => {
    await Promise.all(Object.values<Cluster>(clusters).map((c) => c.stop()));
  });
  return clusters;
}
