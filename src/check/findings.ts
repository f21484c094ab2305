/**
 * `mirrors check`, the pure part: what a scheduled job must look at for each mirror, from one plan (config and
 * schema drift, what the last verify found), one status report (health) and the source's WAL limit. The
 * command (cli/check.ts) gathers them; render/check.ts prints them.
 */
import { isDrift } from '../plan/diagnostics.js';
import type { Plan } from '../plan/types.js';
import type { MirrorReport, StatusName } from '../status/model.js';
import { formatBytes, formatDuration } from '../util/format.js';

export type FindingKind =
  | 'plan_error'
  | 'config_drift'
  | 'schema_drift'
  | 'guard'
  | 'data_drift'
  | 'status'
  | 'lag'
  | 'worker'
  | 'slot'
  | 'wal_retention'
  | 'verify';

export interface Finding {
  kind: FindingKind;
  /** The diagnostic code (MR...) when the plan gave it. */
  code?: string;
  address: string;
  message: string;
  hint?: string;
}

export interface MirrorCheck {
  mirror: string;
  /** clean: nothing to look at; attention: findings; apply_in_progress: an apply holds the mirror's lock (not checked). */
  state: 'clean' | 'attention' | 'apply_in_progress';
  status: StatusName;
  findings: Finding[];
  /** Who holds the apply lock, when state is apply_in_progress. */
  apply?: { command: string | null; host: string | null; pid: number | null; since: string | null };
}

/** Retained WAL at or above this share of max_slot_wal_keep_size is reported: the slot is close to being lost. */
export const WAL_RETENTION_SHARE = 0.8;

export interface SourceLimits {
  /** max_slot_wal_keep_size in MB; -1: unlimited. */
  maxSlotWalKeepMb: number;
}

const ofMirror = (name: string, address: string) =>
  address === `mirror.${name}` || address.startsWith(`mirror.${name}.`);

export function checkMirror(
  name: string,
  plan: Plan,
  report: MirrorReport,
  source: SourceLimits | null,
  opts: { pausedInConfig: boolean },
): MirrorCheck {
  const status = report.status.name;
  const lock = report.apply_lock;
  // As Atlas's drift check does: an apply under way is what changes the mirror now, not drift.
  if (lock?.held)
    return {
      mirror: name,
      state: 'apply_in_progress',
      status,
      findings: [],
      apply: { command: lock.command, host: lock.host, pid: lock.pid, since: lock.since },
    };
  const peers = new Set([`peer.${report.source}`, `peer.${report.destination}`]);
  const findings: Finding[] = [];

  for (const d of plan.diagnostics) {
    const mine = ofMirror(name, d.address) || [...peers].some((p) => d.address === p || d.address.startsWith(`${p}.`));
    if (!mine) continue;
    const kind: FindingKind | null =
      d.code === 'MR165'
        ? 'data_drift'
        : d.code === 'MR159'
          ? 'guard'
          : isDrift(d)
            ? 'schema_drift'
            : d.severity === 'error'
              ? 'plan_error'
              : null;
    if (kind) findings.push({ kind, code: d.code, address: d.address, message: d.message, hint: d.hint });
  }
  const actions = plan.actions.filter((a) => ofMirror(name, a.address));
  if (actions.length)
    findings.push({
      kind: 'config_drift',
      address: `mirror.${name}`,
      message: `the plan has ${actions.length} change${actions.length === 1 ? '' : 's'}: ${actions.map((a) => `${a.op} ${a.address} (${a.reason})`).join('; ')}`,
      hint: '`mirrors plan` shows them; `mirrors apply` makes the peers match mirrors.yaml',
    });

  const healthy: StatusName[] = ['Following', 'Promoted', ...(opts.pausedInConfig ? (['Paused'] as const) : [])];
  if (status === 'Degraded') {
    const s = report.status as Extract<MirrorReport['status'], { name: 'Degraded' }>;
    findings.push({
      kind: 'lag',
      address: `mirror.${name}`,
      message: `lag ${s.lag_ms === null ? 'unknown' : formatDuration(s.lag_ms)} is over lag_threshold ${formatDuration(s.lag_threshold_ms)}`,
      hint: 'see `mirrors status`: a long transaction, a slow destination, or a worker that cannot keep up',
    });
  } else if (!healthy.includes(status)) {
    findings.push({
      kind: 'status',
      address: `mirror.${name}`,
      message: `status ${status}: ${report.status.reason}`,
      hint: 'see `mirrors status` for the error and what to do',
    });
  }
  if (report.worker.lease_held === false && !['Paused', 'Promoted', 'NotCreated'].includes(status))
    findings.push({
      kind: 'worker',
      address: `mirror.${name}`,
      message: "no worker holds the mirror's lease: nothing streams it",
      hint: 'start `mirrors run` for it (one active worker per mirror; others wait as standbys)',
    });

  const slot = report.slot;
  if (slot?.exists && (slot.wal_status === 'unreserved' || slot.wal_status === 'lost'))
    findings.push({
      kind: 'slot',
      address: `mirror.${name}.slot`,
      message:
        slot.wal_status === 'lost'
          ? `slot ${slot.name} lost the WAL it needs (wal_status lost): the mirror cannot stream on`
          : `slot ${slot.name} keeps more WAL than max_slot_wal_keep_size (wal_status unreserved): the next checkpoint may remove what it needs`,
      hint:
        slot.wal_status === 'lost'
          ? '`mirrors plan` proposes a new slot and a full resync'
          : 'let the worker catch up now (see `mirrors status`), or raise max_slot_wal_keep_size on the source',
    });
  else if (slot?.exists && source && source.maxSlotWalKeepMb > 0 && slot.retained_bytes !== null) {
    const limit = source.maxSlotWalKeepMb * 1024 * 1024;
    const retained = Number(slot.retained_bytes);
    if (retained >= WAL_RETENTION_SHARE * limit)
      findings.push({
        kind: 'wal_retention',
        address: `mirror.${name}.slot`,
        message: `slot ${slot.name} keeps ${formatBytes(retained)} of WAL, ${Math.round((100 * retained) / limit)}% of max_slot_wal_keep_size (${formatBytes(limit)})`,
        hint: 'past the limit the slot loses WAL and the mirror needs a full resync: let the worker catch up, or raise the limit',
      });
  }
  return { mirror: name, state: findings.length ? 'attention' : 'clean', status, findings };
}

/** 0 nothing to look at (an apply in progress included), 2 otherwise. Errors of the check itself are 1 (thrown). */
export function checkExitCode(mirrors: MirrorCheck[]): 0 | 2 {
  return mirrors.some((m) => m.state === 'attention') ? 2 : 0;
}
