/**
 * Execution order: a topological sort of the actions by depends_on, ties broken by the order diff
 * produced them (which follows the config), so the same inputs always give the same plan. Pure.
 */
import type { Action } from './types.js';

export function orderActions(actions: Action[]): Action[] {
  const index = new Map(actions.map((a, i) => [a.id, i]));
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const a of actions) {
    const deps = [...new Set(a.depends_on)].filter((d) => index.has(d) && d !== a.id);
    a.depends_on = deps.sort((x, y) => index.get(x)! - index.get(y)!);
    indegree.set(a.id, deps.length);
    for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), a.id]);
  }
  // A small binary heap keyed by original position keeps this O(n log n) for thousands of tables.
  const heap: number[] = [];
  const push = (i: number) => {
    heap.push(i);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (heap[p] <= heap[c]) break;
      [heap[p], heap[c]] = [heap[c], heap[p]];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let m = p;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === p) break;
        [heap[p], heap[m]] = [heap[m], heap[p]];
        p = m;
      }
    }
    return top;
  };
  actions.forEach((a, i) => {
    if (indegree.get(a.id) === 0) push(i);
  });
  const out: Action[] = [];
  while (heap.length) {
    const a = actions[pop()];
    out.push(a);
    for (const d of dependents.get(a.id) ?? []) {
      const n = indegree.get(d)! - 1;
      indegree.set(d, n);
      if (n === 0) push(index.get(d)!);
    }
  }
  if (out.length !== actions.length) {
    const stuck = actions.filter((a) => !out.includes(a)).map((a) => a.id);
    throw new Error(`dependency cycle among plan actions: ${stuck.join(', ')}`);
  }
  return out;
}
