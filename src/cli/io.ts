/** Output streams and color for the CLI: the only place that writes to the terminal. */
import kleur from 'kleur';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  stdoutIsTty: boolean;
  stdinIsTty: boolean;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  stdoutIsTty: !!process.stdout.isTTY,
  stdinIsTty: !!process.stdin.isTTY,
};

/** Color only on a terminal, never with NO_COLOR (https://no-color.org) or --no-color. */
export function setColor(flag: boolean | undefined, io: Io) {
  const noColorEnv = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  kleur.enabled = flag !== false && !noColorEnv && (io.stdoutIsTty || process.env.FORCE_COLOR === '1');
}
