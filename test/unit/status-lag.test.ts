/** The pure lag and stored-error helpers of mirrors status (status/lag.ts, status/stored-error.ts). */
import { describe, expect, it } from 'vitest';
import { CAUGHT_UP_GRACE_MS, lagMs, legacyLagMs, walBytesBehind } from '../../src/status/lag.js';
import {
  describeError,
  errorSentence,
  isRetried,
  toErrorHistory,
  toErrorRecord,
} from '../../src/status/stored-error.js';

describe('lagMs (mirrors.lag() of migration 5)', () => {
  it('is the age of the oldest unapplied source commit when one is known, whatever caught_up_at says', () => {
    expect(lagMs({ behindSinceAgeMs: 42_000, appliedThroughAgeMs: 100, workerLive: true })).toBe(42_000);
    expect(lagMs({ behindSinceAgeMs: 3, appliedThroughAgeMs: null, workerLive: true })).toBe(3);
  });

  it('reads a behind_since ahead of the destination clock (source clock skew) as zero, like greatest(..., 0)', () => {
    expect(lagMs({ behindSinceAgeMs: -250, appliedThroughAgeMs: 60_000, workerLive: true })).toBe(0);
  });

  it('is zero within the grace after the last instant known applied, then the whole quiet time', () => {
    expect(CAUGHT_UP_GRACE_MS).toBe(5000);
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: 0, workerLive: true })).toBe(0);
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: 5000, workerLive: true })).toBe(0);
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: 5001, workerLive: true })).toBe(5001);
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: -10, workerLive: true })).toBe(0);
  });

  it('has no grace once the worker stopped streaming (stopped, paused, failed, silent heartbeat): the quiet time counts', () => {
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: 300, workerLive: false })).toBe(300);
  });

  it('is null only when the mirror has never streamed', () => {
    expect(lagMs({ behindSinceAgeMs: null, appliedThroughAgeMs: null, workerLive: true })).toBeNull();
  });
});

describe('legacyLagMs (mirrors.lag() of migrations 2-4)', () => {
  it('adds heartbeat silence beyond 5 s to the worker-reported lag', () => {
    expect(legacyLagMs(40, 1000)).toBe(40);
    expect(legacyLagMs(0, 12_000)).toBe(7000);
    expect(legacyLagMs(40, null)).toBe(40);
    expect(legacyLagMs(null, 60_000)).toBeNull();
  });
});

describe('walBytesBehind', () => {
  it('subtracts LSNs as 64-bit integers across the high/low boundary', () => {
    expect(walBytesBehind('0/10', '0/8')).toBe('8');
    expect(walBytesBehind('1/0', '0/FFFFFFFF')).toBe('1');
    expect(walBytesBehind('16/B374D848', '16/B364D848')).toBe('1048576');
    expect(walBytesBehind('16/b374d848', '16/B364D848')).toBe('1048576');
    expect(walBytesBehind('FFFFFFFF/FFFFFFFF', '0/0')).toBe('18446744073709551615');
  });

  it('is 0 when applied equals or passes the source position, null when either is unknown', () => {
    expect(walBytesBehind('0/10', '0/10')).toBe('0');
    expect(walBytesBehind('0/10', '0/20')).toBe('0');
    expect(walBytesBehind(null, '0/10')).toBeNull();
    expect(walBytesBehind('0/10', null)).toBeNull();
  });

  it('refuses text that is not an LSN rather than guessing', () => {
    expect(() => walBytesBehind('0/10', '16')).toThrow('not an LSN: 16');
  });
});

describe('stored errors', () => {
  const stored = {
    at: '2026-01-01T00:00:02.000Z',
    kind: 'gap',
    code: 'MR_GAP',
    message: 'the slot starts after the applied position',
    hint: 'run mirrors plan',
    diff: null,
  };

  it('reads migration 5 errors field by field, and anything else as a message', () => {
    expect(toErrorRecord(stored)).toEqual(stored);
    const drift = {
      ...stored,
      kind: 'drift',
      diff: '--- source public.t\n+++ destination public.t\n-  v text\n+  v integer\n',
    };
    expect(toErrorRecord(drift)).toEqual(drift);
    expect(toErrorRecord(null)).toBeNull();
    expect(toErrorRecord(undefined)).toBeNull();
    expect(toErrorRecord('plain text')).toEqual({
      at: null,
      kind: null,
      code: null,
      message: 'plain text',
      hint: null,
      diff: null,
    });
    expect(toErrorRecord({ code: 'X', at: 7 })).toEqual({
      at: null,
      kind: null,
      code: 'X',
      message: '{"code":"X","at":7}',
      hint: null,
      diff: null,
    });
    expect(toErrorRecord([1])).toMatchObject({ message: '[1]' });
  });

  it('reads error_history newest first, and null when the catalog keeps none', () => {
    expect(toErrorHistory([stored, 'older', null])).toEqual([
      stored,
      { at: null, kind: null, code: null, message: 'older', hint: null, diff: null },
    ]);
    expect(toErrorHistory([])).toEqual([]);
    expect(toErrorHistory(null)).toBeNull();
  });

  it('tells errors the worker retries from those that need a person', () => {
    for (const kind of ['drift', 'gap', 'fatal']) expect(isRetried({ ...stored, kind })).toBe(false);
    for (const kind of ['transient', 'catalog_changed', null]) expect(isRetried({ ...stored, kind })).toBe(true);
  });

  it('describes an error short (message and code) and whole (time, message, code, hint)', () => {
    const e = toErrorRecord(stored)!;
    expect(describeError(e)).toBe('the slot starts after the applied position (MR_GAP)');
    expect(describeError({ ...e, message: 'MR_GAP: gap' })).toBe('MR_GAP: gap');
    expect(describeError({ ...e, code: null })).toBe('the slot starts after the applied position');
    expect(errorSentence(e)).toBe(
      'at 2026-01-01T00:00:02.000Z: the slot starts after the applied position (MR_GAP); hint: run mirrors plan',
    );
    expect(errorSentence({ ...e, at: null, hint: null })).toBe('the slot starts after the applied position (MR_GAP)');
  });
});
