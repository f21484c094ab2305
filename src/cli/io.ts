/** Output streams and color for the CLI: the only place that writes to the terminal. */
import kleur from 'kleur';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  stdoutIsTty: boolean;
  stdinIsTty: boolean;
}

/**
 * A reader that goes away (`mirrors show plan.json | head`) closes the pipe: further output is dropped and the
 * command goes on (an apply must not stop half-way because nobody reads its progress), with no stack trace.
 */
function pipe(stream: NodeJS.WriteStream): (text: string) => void {
  let closed = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    closed = true;
  });
  return (text) => {
    if (!closed) stream.write(text);
  };
}

export const processIo: Io = {
  out: pipe(process.stdout),
  err: pipe(process.stderr),
  stdoutIsTty: !!process.stdout.isTTY,
  stdinIsTty: !!process.stdin.isTTY,
};

/** Color only on a terminal, never with NO_COLOR (https://no-color.org) or --no-color. */
export function setColor(flag: boolean | undefined, io: Io) {
  const noColorEnv = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  kleur.enabled = flag !== false && !noColorEnv && (io.stdoutIsTty || process.env.FORCE_COLOR === '1');
}
