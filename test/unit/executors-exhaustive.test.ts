/**
 * The executor table is checked by the compiler (`npm run lint` type-checks the tests): a table without an
 * executor for some action kind, or with an executor of the wrong kind, does not compile. The directives
 * below fail the type check if those lines ever compile.
 */
import { describe, expect, it } from 'vitest';
import type { ExecutorTable } from '../../src/apply/executors.js';
import { ACTION_OPS, type ActionKind } from '../../src/plan/types.js';

const run = async () => {};

describe('the executor table', () => {
  it('does not compile without an executor for every kind', () => {
    // @ts-expect-error `stream` has no executor
    const missing: ExecutorTable = {
      catalog: run,
      schema: run,
      extension: run,
      type: run,
      mirror: run,
      publication: run,
      slot: run,
      table: run,
      columns: run,
      snapshot: run,
      indexes: run,
      foreign_keys: run,
      promotion: run,
      sync_standbys: run,
    };
    const complete: ExecutorTable = { ...missing, stream: run };
    expect(Object.keys(complete).sort()).toEqual((Object.keys(ACTION_OPS) as ActionKind[]).sort());
  });

  it('does not compile with an executor that reads another kind of action', () => {
    const wrong: Partial<ExecutorTable> = {
      // @ts-expect-error a snapshot executor given a table action's details
      snapshot: async (_ctx, a: { kind: 'table'; details: { spec: unknown } }) => void a,
    };
    expect(wrong.snapshot).toBeTypeOf('function');
  });
});
