/**
 * `mirrors check`: the one command a scheduled job runs (docs/check.md). Plans (config and schema drift, what the
 * last verify found), reads the status (health), optionally verifies a sample; writes nothing but a verify run.
 * Exit 0 nothing to look at, 2 something to look at, 1 error.
 */
import { loadConfig } from '../config/load.js';
import { buildPlan } from '../diff/build.js';
import { inspect } from '../inspect/index.js';
import { MirrorsError } from '../errors.js';
import { type Finding, type MirrorCheck, checkExitCode, checkMirror } from '../check/findings.js';
import { collectStatus } from '../status/collect.js';
import { statusReport } from '../status/model.js';
import {
  type CheckReport,
  issueMarker,
  issueTitle,
  mirrorMarkdown,
  renderCheckJson,
  renderCheckMarkdown,
  renderCheckText,
} from '../render/check.js';
import { docsBase } from '../render/docs-url.js';
import { type TableResult, VERIFY_DEFAULTS, verifyMirror } from '../verify/run.js';
import { rowCounts } from '../diff/verify-result.js';
import type { Io } from './io.js';
import { checkSelection, selection } from './plan.js';
import { VERSION } from './version.js';

export interface CheckCliOptions {
  config?: string;
  mirror?: string[];
  verifySample?: string;
  docsUrl?: string;
  format?: 'text' | 'json' | 'markdown';
}

export async function checkCommand(opts: CheckCliOptions, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const sample = opts.verifySample === undefined ? null : Number(opts.verifySample);
  if (sample !== null && !(sample > 0 && sample <= 1))
    throw new MirrorsError('USAGE', `--verify-sample takes a fraction in (0, 1]: ${opts.verifySample}`, {
      hint: 'e.g. --verify-sample 0.01 compares about 1% of each table of every clean mirror',
    });
  const selected = selection(opts.mirror);
  const createdBy = `mirrors ${VERSION}`;
  const { live } = await inspect(config, selected);
  const plan = buildPlan(config, live, { selected, createdBy });
  checkSelection(config, plan, selected);
  const names = selected ?? Object.keys(config.mirrors);
  const generatedAt = new Date().toISOString();
  const status = statusReport({
    configFile: config.file,
    createdBy,
    generatedAt,
    facts: await collectStatus(config, names),
  });

  const checks: MirrorCheck[] = [];
  for (const name of names) {
    const m = config.mirrors[name];
    const report = status.mirrors.find((r) => r.name === name)!;
    const maxSlotWalKeepMb = live.peers[m.source]?.settings?.max_slot_wal_keep_size;
    const c = checkMirror(name, plan, report, maxSlotWalKeepMb === undefined ? null : { maxSlotWalKeepMb }, {
      pausedInConfig: m.paused,
    });
    if (
      sample !== null &&
      c.state !== 'apply_in_progress' &&
      ['Following', 'Degraded'].includes(c.status) &&
      m.mode === 'async'
    ) {
      // What this run finds replaces what the plan read of an earlier run for the same table (MR165).
      const fresh = await sampled(config, name, sample);
      c.findings = [
        ...c.findings.filter((f) => !fresh.some((x) => x.code === f.code && x.address === f.address)),
        ...fresh,
      ];
      c.state = c.findings.length ? 'attention' : 'clean';
    }
    checks.push(c);
  }
  const docs = docsBase(opts.docsUrl);
  const report: CheckReport = {
    format_version: 1,
    created_by: createdBy,
    generated_at: generatedAt,
    config_file: config.file,
    outcome: checkExitCode(checks) ? 'attention' : 'clean',
    mirrors: checks.map((c) => ({
      ...c,
      issue: { marker: issueMarker(c.mirror), title: issueTitle(c), body: mirrorMarkdown(c, docs, generatedAt) },
    })),
  };
  const format = opts.format ?? 'text';
  io.out(
    format === 'json'
      ? renderCheckJson(report)
      : format === 'markdown'
        ? renderCheckMarkdown(report)
        : renderCheckText(report),
  );
  return checkExitCode(checks);
}

/** ` (id 4, id 9)`: the first keys a run named. */
const keysOf = (t: TableResult) => {
  const keys = [...t.missing.keys, ...t.extra.keys, ...t.changed.keys].slice(0, 5);
  return keys.length ? ` (${keys.join(', ')})` : '';
};

/** A sampled `mirrors verify` of the mirror, as findings. */
async function sampled(config: Parameters<typeof verifyMirror>[0], name: string, sample: number): Promise<Finding[]> {
  try {
    const r = await verifyMirror(config, config.mirrors[name], { ...VERIFY_DEFAULTS, tables: [], sample });
    return r.tables
      .filter((t) => t.outcome === 'different')
      .map((t) => ({
        kind: 'data_drift' as const,
        code: 'MR165',
        address: t.address,
        message: `a sampled verify (${sample}) found ${t.destination} different from its source${rowCounts({ missing: t.missing.count, extra: t.extra.count, changed: t.changed.count })}${keysOf(t)}`,
        hint: `copy it again with \`mirrors apply --replace ${t.address}\` (or repair it in place with resync_strategy: merge)`,
      }));
  } catch (err) {
    return [
      {
        kind: 'verify',
        address: `mirror.${name}`,
        message: `the sampled verify could not run: ${(err as Error).message}`,
        hint: err instanceof MirrorsError ? err.hint : undefined,
      },
    ];
  }
}
