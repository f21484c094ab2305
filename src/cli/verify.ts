/**
 * `mirrors verify`: compares live mirrors' source and destination at one point (verify/run.ts). Writes only its
 * run to the destination's catalog. Exit 0 equal, 2 differences found, 1 error.
 */
import { loadConfig } from '../config/load.js';
import { MirrorsError, pgFields } from '../errors.js';
import { renderVerifyJson, renderVerifyText } from '../render/verify.js';
import { parseDuration } from '../config/duration.js';
import { type MirrorVerify, type VerifyReport, overallOutcome, verifyExitCode } from '../verify/report.js';
import { VERIFY_DEFAULTS, verifyMirror } from '../verify/run.js';
import type { Io } from './io.js';
import { jsonError } from './json-error.js';
import { VERSION } from './version.js';

export interface VerifyCliOptions {
  config?: string;
  mirror?: string[];
  table?: string[];
  sample?: string;
  seed?: string;
  timeout?: string;
  chunkRows?: string;
  format?: 'text' | 'json';
}

export async function verifyCommand(opts: VerifyCliOptions, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const declared = Object.keys(config.mirrors);
  const tables = opts.table ?? [];
  const ofTables = tables.map((a) => /^mirror\.([^.]+)\.table\./.exec(a)?.[1]);
  if (ofTables.some((x) => x === undefined))
    throw new MirrorsError('USAGE', `--table takes a table address: ${tables[ofTables.indexOf(undefined)]}`, {
      hint: 'e.g. --table mirror.NAME.table.public.orders (the addresses `mirrors plan` prints)',
    });
  const selected = opts.mirror?.length
    ? [...new Set(opts.mirror)]
    : tables.length
      ? [...new Set(ofTables as string[])]
      : declared;
  const unknown = selected.filter((n) => !config.mirrors[n]);
  if (unknown.length)
    throw new MirrorsError('USAGE', `unknown mirror${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, {
      hint: `declared mirrors: ${declared.join(', ') || '(none)'}`,
    });
  const sample = opts.sample === undefined ? VERIFY_DEFAULTS.sample : Number(opts.sample);
  if (!(sample > 0 && sample <= 1))
    throw new MirrorsError('USAGE', `--sample takes a fraction in (0, 1]: ${opts.sample}`, {
      hint: 'e.g. --sample 0.01 compares about 1% of each table, in chunks picked by --seed',
    });
  const seed = opts.seed === undefined ? VERIFY_DEFAULTS.seed : Number(opts.seed);
  if (!Number.isInteger(seed)) throw new MirrorsError('USAGE', `--seed takes an integer: ${opts.seed}`);
  const timeout =
    opts.timeout === undefined ? { ok: true as const, ms: VERIFY_DEFAULTS.timeoutMs } : parseDuration(opts.timeout);
  if (!timeout.ok) throw new MirrorsError('USAGE', `--timeout: ${timeout.message}`, { hint: 'e.g. 30s, 2m' });
  const timeoutMs = timeout.ms;
  const chunkRows = opts.chunkRows === undefined ? VERIFY_DEFAULTS.chunkRows : Number(opts.chunkRows);
  if (!Number.isInteger(chunkRows) || chunkRows < 1)
    throw new MirrorsError('USAGE', `--chunk-rows takes a positive integer: ${opts.chunkRows}`);
  const text = (opts.format ?? 'text') === 'text';

  const mirrors: MirrorVerify[] = [];
  for (const name of selected) {
    try {
      const r = await verifyMirror(config, config.mirrors[name], {
        ...VERIFY_DEFAULTS,
        tables: tables.filter((a) => a.startsWith(`mirror.${name}.table.`)),
        sample,
        seed,
        chunkRows,
        timeoutMs,
        progress: text ? (msg) => io.err(`${msg}\n`) : undefined,
      });
      mirrors.push(r);
    } catch (err) {
      // Postgres's own errors (a missing privilege, say) are the peer's, not a bug of mirrors.
      const pg = pgFields(err);
      const e = jsonError(
        pg && !(err instanceof MirrorsError) ? new MirrorsError('PEER_ERROR', (err as Error).message, { pg }) : err,
        1,
      ).error;
      mirrors.push({
        mirror: name,
        outcome: 'error',
        error: { code: e.code, message: e.message, hint: e.hint ?? undefined },
      });
    }
  }
  const report: VerifyReport = {
    format_version: 1,
    created_by: `mirrors ${VERSION}`,
    generated_at: new Date().toISOString(),
    config_file: config.file,
    outcome: overallOutcome(mirrors),
    mirrors,
  };
  io.out(text ? renderVerifyText(report) : renderVerifyJson(report));
  return verifyExitCode(report);
}
