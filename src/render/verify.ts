/** Text and JSON rendering of a VerifyReport (verify/report.ts). Reads the report only. */
import kleur from 'kleur';
import type { TableResult } from '../verify/run.js';
import type { MirrorVerify, VerifyReport } from '../verify/report.js';

export function renderVerifyJson(report: VerifyReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

const n = (x: number) => x.toLocaleString('en-US');
const ms = (x: number | null) => (x === null ? '?' : x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x)} ms`);

export function renderVerifyText(report: VerifyReport): string {
  const out: string[] = [];
  for (const m of report.mirrors) out.push(...mirrorLines(m), '');
  const counts = { equal: 0, different: 0, error: 0 };
  for (const m of report.mirrors) counts[m.outcome]++;
  out.push(
    `Verified ${report.mirrors.length} mirror${report.mirrors.length === 1 ? '' : 's'}: ${counts.equal} equal, ${counts.different} different, ${counts.error} not compared.`,
  );
  return out.join('\n') + '\n';
}

function mirrorLines(m: MirrorVerify): string[] {
  if (m.outcome === 'error')
    return [
      `${kleur.red('!')} mirror ${m.mirror}: not compared: ${m.error.message}`,
      ...(m.error.hint ? [`  hint: ${m.error.hint}`] : []),
    ];
  const compared = m.tables.filter((t) => t.outcome !== 'skipped');
  const rows = compared.reduce((s, t) => s + t.rows.source, 0);
  const head = `${m.outcome === 'equal' ? kleur.green('=') : kleur.red('≠')} mirror ${m.mirror}: ${m.outcome === 'equal' ? kleur.green('equal') : kleur.red('different')}, ${compared.length} table${compared.length === 1 ? '' : 's'}, ${n(rows)} source rows${m.sample < 1 ? ` (sample ${m.sample})` : ''}, in ${m.seconds.toFixed(1)} s`;
  const lines = [
    head,
    `  at source ${m.sourceLsn}, destination ${m.destinationLsn}; the worker applied nothing for ${ms(m.holdMs)} at that point (and ${ms(m.armMs)} while the source's snapshot was taken)`,
  ];
  for (const t of m.tables) lines.push(...tableLines(t));
  return lines;
}

function tableLines(t: TableResult): string[] {
  if (t.outcome === 'skipped') return [`  ${kleur.dim('-')} ${t.destination}: not compared: ${t.reason}`];
  const chunks = `${n(t.chunks.compared)} chunk${t.chunks.compared === 1 ? '' : 's'}`;
  if (t.outcome === 'equal') return [`  ${kleur.green('=')} ${t.destination}: ${n(t.rows.source)} rows, ${chunks}`];
  const lines = [
    `  ${kleur.red('≠')} ${t.destination}: source ${n(t.rows.source)} rows, destination ${n(t.rows.destination)}; ${n(t.chunks.differing)} of ${chunks} ${t.chunks.differing === 1 ? 'differs' : 'differ'}`,
  ];
  const list = (label: string, l: TableResult['missing']) => {
    if (!l.count) return;
    const more = l.count > l.keys.length ? ` and ${n(l.count - l.keys.length)} more` : '';
    lines.push(`      ${label} (${n(l.count)}): ${l.keys.join(', ')}${more}`);
  };
  list('missing on the destination', t.missing);
  list('extra on the destination', t.extra);
  list('changed', t.changed);
  if (t.chunks.differing > t.chunks.drilled)
    lines.push(
      `      ${n(t.chunks.differing - t.chunks.drilled)} differing chunks not drilled into (their keys are not counted)`,
    );
  for (const p of t.partitions ?? [])
    if (p.source !== p.destination)
      lines.push(`      partition ${p.partition}: source ${n(p.source)} rows, destination ${n(p.destination)}`);
  lines.push(`      fix: mirrors apply --replace ${t.address} (or set resync_strategy: merge to repair it in place)`);
  return lines;
}
