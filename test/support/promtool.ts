/**
 * promtool (Prometheus's checker) for the tests: MIRRORS_PROMTOOL, else where .ci/run unpacks it, else PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { it } from 'vitest';

const CACHED_PROMTOOL = '/var/cache/mirrors-ci/bin/promtool';
export const PROMTOOL = process.env.MIRRORS_PROMTOOL || (existsSync(CACHED_PROMTOOL) ? CACHED_PROMTOOL : 'promtool');
/**
 * CI (.ci/run) always provides promtool and these tests must run there. A developer's `npm test` without it
 * skips them, loudly, rather than failing the whole suite over a tool it does not need to build.
 */
export const promtoolMissing =
  process.env.CI !== 'true' &&
  !process.env.MIRRORS_PROMTOOL &&
  !existsSync(CACHED_PROMTOOL) &&
  spawnSync('promtool', ['--version']).error !== undefined;
if (promtoolMissing)
  console.warn(
    'promtool not found: the promtool checks are skipped (CI runs them). Get it: apt-get download prometheus && dpkg-deb -x prometheus_*.deb DIR, then MIRRORS_PROMTOOL=DIR/usr/bin/promtool',
  );
export const withPromtool = promtoolMissing ? it.skip : it;

interface Run {
  code: number;
  output: string;
}

export function runTool(cmd: string, args: string[], input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(
              `promtool not found (${PROMTOOL}). ` +
                (process.env.CI === 'true'
                  ? '.ci/run should have unpacked it and set MIRRORS_PROMTOOL: see its "promtool" step.'
                  : 'Install it (Debian/Ubuntu: apt-get install prometheus, or without the service: ' +
                    'apt-get download prometheus && dpkg-deb -x prometheus_*.deb DIR) and put it on PATH ' +
                    'or set MIRRORS_PROMTOOL=DIR/usr/bin/promtool.'),
            )
          : err,
      ),
    );
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
    child.stdin.on('error', () => {}); // promtool may exit before reading everything; its exit code tells.
    child.stdin.end(input);
  });
}

export const checkMetrics = (exposition: string) => runTool(PROMTOOL, ['check', 'metrics'], exposition);
