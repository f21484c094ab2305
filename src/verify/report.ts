/** What `mirrors verify` reports (docs/verify.md#json): per mirror, its result or why it could not be compared. */
import type { MirrorResult } from './run.js';

export interface VerifyError {
  code: string;
  message: string;
  hint?: string;
}

export type MirrorVerify =
  | ({ outcome: 'equal' | 'different' } & MirrorResult)
  | { mirror: string; outcome: 'error'; error: VerifyError };

export interface VerifyReport {
  format_version: 1;
  created_by: string;
  generated_at: string;
  config_file: string;
  outcome: 'equal' | 'different' | 'error';
  mirrors: MirrorVerify[];
}

/** Error if any mirror could not be compared, else different if any table differs, else equal. */
export function overallOutcome(mirrors: MirrorVerify[]): VerifyReport['outcome'] {
  if (mirrors.some((m) => m.outcome === 'error')) return 'error';
  return mirrors.some((m) => m.outcome === 'different') ? 'different' : 'equal';
}

/** 0 equal, 2 differences found, 1 a mirror could not be compared. */
export function verifyExitCode(report: VerifyReport): 0 | 1 | 2 {
  return report.outcome === 'error' ? 1 : report.outcome === 'different' ? 2 : 0;
}
