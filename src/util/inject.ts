/**
 * Fault injection for the crash tests (test/e2e/promotion-crash.test.ts, promotion-reverse.test.ts,
 * schema-changes.test.ts), like Postgres's injection points: MIRRORS_INJECT_KILL_AFTER=<point> makes the process
 * kill itself with SIGKILL right after that point: a promotion step, an action's address once the action is
 * done, `schema_change` once the worker committed a schema change, `swap_loaded` once a swap's shadow is loaded and
 * indexed (before the swap).
 */
export function injectKill(point: string) {
  if (process.env.MIRRORS_INJECT_KILL_AFTER === point) process.kill(process.pid, 'SIGKILL');
}
