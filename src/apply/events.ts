/** What apply reports while it runs. The CLI renders these; apply never prints. */
import type { Action } from '../plan/types.js';
import type { PgErrorFields } from '../errors.js';

export type ApplyEvent =
  | { type: 'lock_wait'; mirror: string; holder: string }
  /** A step of a promotion (apply/promotion.ts), ms since it started. */
  | { type: 'promotion_step'; mirror: string; step: string; ms: number; detail?: string }
  | { type: 'action_start'; action: Action; index: number; total: number }
  | { type: 'action_done'; action: Action; index: number; total: number; ms: number }
  | { type: 'action_failed'; action: Action; index: number; total: number; message: string; pg?: PgErrorFields }
  | {
      type: 'snapshot_progress';
      mirror: string;
      table: string;
      rowsDone: number;
      bytesDone: number;
      bytesTotal: number;
      tableDone: boolean;
      /** Mirror-wide totals across its tables. */
      mirrorBytesDone: number;
      mirrorBytesTotal: number;
    };

export type Reporter = (e: ApplyEvent) => void;
