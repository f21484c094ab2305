/**
 * Renders apply events: bars on a terminal (cli-progress), plain lines without one, JSON lines with
 * --format json. The only consumer of ApplyEvent.
 */
import cliProgress from 'cli-progress';
import kleur from 'kleur';
import type { ApplyEvent, Reporter } from '../apply/events.js';
import { SYMBOL } from '../render/text.js';
import { formatBytes, formatDuration } from '../util/format.js';
import type { Io } from './io.js';

export function jsonReporter(io: Io): Reporter {
  return (e) => {
    const { action, ...rest } = e as ApplyEvent & { action?: { id: string; address: string; kind: string; op: string } };
    const out = action ? { ...rest, action: { id: action.id, address: action.address, kind: action.kind, op: action.op } } : rest;
    io.out(JSON.stringify({ at: new Date().toISOString(), ...out }) + '\n');
  };
}

export function textReporter(io: Io, tty: boolean): Reporter & { stop(): void } {
  let multi: cliProgress.MultiBar | null = null;
  const bars = new Map<string, cliProgress.SingleBar>();
  const started = new Map<string, number>();
  let lastPlain = 0;
  const print = (line: string) => {
    if (multi) multi.log(line + '\n');
    else io.out(line + '\n');
  };
  const stopBars = () => {
    multi?.stop();
    multi = null;
    bars.clear();
  };
  const reporter = ((e: ApplyEvent) => {
    switch (e.type) {
      case 'lock_wait':
        print(kleur.yellow(`waiting for the lock of mirror ${e.mirror}, held by ${e.holder}`));
        return;
      case 'action_start':
        if (e.action.kind === 'snapshot') print(`${SYMBOL[e.action.op].padStart(3)} ${e.action.address}: ${e.action.reason}`);
        return;
      case 'action_done':
        stopBars();
        print(`${kleur.green(SYMBOL[e.action.op].padStart(3))} ${e.action.address} ${kleur.dim(`done in ${formatDuration(e.ms)} (${e.index + 1}/${e.total})`)}`);
        return;
      case 'action_failed':
        stopBars();
        print(`${kleur.red('  !')} ${e.action.address} ${kleur.red('failed')}: ${e.message}`);
        return;
      case 'snapshot_progress': {
        const key = `${e.mirror}\u0000${e.table}`;
        if (!started.has(key)) started.set(key, Date.now());
        const elapsed = (Date.now() - started.get(key)!) / 1000;
        const rate = elapsed > 0 ? e.bytesDone / elapsed : 0;
        if (tty) {
          if (!multi) {
            multi = new cliProgress.MultiBar(
              { format: '  {table} [{bar}] {percentage}% | {rows} rows | {done}/{total} | {rate}/s | ETA {eta_formatted}', hideCursor: true, clearOnComplete: false, stream: process.stdout },
              cliProgress.Presets.shades_classic,
            );
          }
          let bar = bars.get(key);
          const payload = { table: e.table.padEnd(28).slice(0, 28), rows: e.rowsDone, done: formatBytes(e.bytesDone), total: formatBytes(e.bytesTotal), rate: formatBytes(rate) };
          if (!bar) {
            bar = multi.create(Math.max(e.bytesTotal, 1), 0, payload);
            bars.set(key, bar);
          }
          bar.setTotal(Math.max(e.bytesTotal, e.bytesDone, 1));
          bar.update(e.bytesDone, payload);
          return;
        }
        const now = Date.now();
        if (e.tableDone) {
          print(`    ${e.table}: copied ${e.rowsDone} rows, ${formatBytes(e.bytesDone)} in ${formatDuration(elapsed * 1000)} (${formatBytes(rate)}/s); mirror ${e.mirror} ${pct(e.mirrorBytesDone, e.mirrorBytesTotal)}`);
        } else if (now - lastPlain >= 5000) {
          lastPlain = now;
          const eta = rate > 0 ? ((e.bytesTotal - e.bytesDone) / rate) * 1000 : Infinity;
          print(`    ${e.table}: ${e.rowsDone} rows, ${formatBytes(e.bytesDone)} of ~${formatBytes(e.bytesTotal)} (${formatBytes(rate)}/s, ETA ${formatDuration(eta)})`);
        }
        return;
      }
    }
  }) as Reporter & { stop(): void };
  reporter.stop = stopBars;
  return reporter;
}

function pct(done: number, total: number): string {
  return total > 0 ? `${Math.min(100, Math.round((done / total) * 100))}% of ~${formatBytes(total)}` : '';
}
