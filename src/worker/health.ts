/**
 * The rules of `mirrors run`'s GET /healthz, as a pure function of what each selected mirror's worker
 * knows and the current time: no I/O, no clock of its own, so every rule is unit-tested. The HTTP server
 * (metrics.ts) answers 200 when `ok`, 503 otherwise, with the report as its JSON body. docs/metrics.md
 * states the same rules for operators.
 */

/** What the worker of one selected mirror knows, at the moment /healthz is asked. */
export interface MirrorHealthInput {
  name: string;
  /** The worker's status (WorkerStatus, or 'Paused' for a mirror paused in the configuration). */
  status: string;
  /** Age of the last applied source commit while behind, 0 when caught up; null when not known. */
  lagSeconds: number | null;
  /** The source has changes this mirror has not applied yet (or a snapshot is still copying). */
  pending: boolean;
  /** The mirror's lag threshold (the one that makes it Degraded). */
  lagThresholdSeconds: number;
  /**
   * When (ms since the epoch) the worker last made progress: a batch committed, an idle position
   * acknowledged, snapshot bytes copied. The worker sets it when it starts streaming, so time spent
   * before the first batch counts too. null: no measure yet (just started), never a stall on its own.
   */
  lastProgressAt: number | null;
}

/** Machine-readable cause of an unhealthy mirror, beside the prose `reason`. */
export type UnhealthyReason = 'failed' | 'stalled';

/** One mirror in the /healthz body. Keys are snake_case, as in the plan JSON. */
export interface MirrorHealth {
  status: string;
  healthy: boolean;
  lag_seconds: number | null;
  /** Present only when unhealthy. */
  reason_code?: UnhealthyReason;
  reason?: string;
}

export interface HealthReport {
  ok: boolean;
  mirrors: Record<string, MirrorHealth>;
}

/**
 * Statuses the stall rule does not apply to. Paused: a person asked for it, and a paused mirror makes no
 * progress by design. Standby: another worker holds the lease and streams; this one only waits. Stopped
 * and Promoted: nothing left to stream. A Failed mirror is unhealthy by the first rule whatever it knows.
 */
const NO_STALL_RULE: ReadonlySet<string> = new Set(['Paused', 'Standby', 'Stopped', 'Promoted']);

/**
 * 503 (ok: false) while any selected mirror is Failed, or has had work pending and made no progress for
 * longer than its lag threshold (a stalled worker: a hung connection, a lock wait, a wedged apply);
 * 200 otherwise. Lag alone is not unhealthy: a mirror catching up after downtime is Degraded and making
 * progress, and a liveness probe that restarted it would only delay it.
 */
export function evaluateHealth(mirrors: readonly MirrorHealthInput[], now: number): HealthReport {
  const report: HealthReport = { ok: true, mirrors: {} };
  for (const m of mirrors) {
    const h = mirrorHealth(m, now);
    report.mirrors[m.name] = h;
    if (!h.healthy) report.ok = false;
  }
  return report;
}

function mirrorHealth(m: MirrorHealthInput, now: number): MirrorHealth {
  const base = { status: m.status, lag_seconds: m.lagSeconds };
  if (m.status === 'Failed') {
    return {
      ...base,
      healthy: false,
      reason_code: 'failed',
      reason:
        'the mirror needs a person (schema drift, a slot that would skip changes, privileges): the worker applies nothing past its position and retries every few seconds; see `mirrors status` and its log',
    };
  }
  if (!NO_STALL_RULE.has(m.status) && m.pending && m.lastProgressAt !== null) {
    const idleSeconds = (now - m.lastProgressAt) / 1000;
    if (idleSeconds > m.lagThresholdSeconds) {
      return {
        ...base,
        healthy: false,
        reason_code: 'stalled',
        reason: `no progress for ${seconds(idleSeconds)} with changes pending (lag threshold ${seconds(m.lagThresholdSeconds)})`,
      };
    }
  }
  return { ...base, healthy: true };
}

/** Tenths below 10 s, so a 100 ms sync threshold does not read as "0 s". */
function seconds(s: number): string {
  return `${s < 10 ? Math.round(s * 10) / 10 : Math.round(s)} s`;
}
