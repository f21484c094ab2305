/** Starts `mirrors run` as a child process and waits for what its logs say. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './cli.js';

export interface RunningWorker {
  child: ChildProcess;
  logs: () => string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number>;
  kill9(): Promise<void>;
  /** GET /metrics of this instance (the port it logged). */
  metrics(): Promise<string>;
}

export function startWorker(cwd: string, env: Record<string, string>, args: string[] = []): RunningWorker {
  // Tests run several workers at once: each gets a free metrics port unless the test chooses.
  const metrics = args.some((a) => a === '--metrics-port' || a === '--no-metrics') ? [] : ['--metrics-port', '0'];
  const child = spawn(process.execPath, [CLI, 'run', ...metrics, ...args], {
    cwd,
    env: { ...process.env, ...env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  return {
    child,
    logs: () => out,
    async waitForLog(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in worker logs:\n${out}`);
        if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode} before ${pattern}:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async metrics() {
      const at = out.match(/metrics on (http:\/\/\S+\/metrics)/)?.[1];
      if (!at) throw new Error(`no metrics address in the worker's logs:\n${out}`);
      return (await fetch(at)).text();
    },
  };
}
