/** The /healthz rules (src/worker/health.ts), one by one. */
import { describe, expect, it } from 'vitest';
import { evaluateHealth, type MirrorHealthInput } from '../../src/worker/health.js';

const NOW = 1_767_225_600_000;

function mirror(over: Partial<MirrorHealthInput> = {}): MirrorHealthInput {
  return {
    name: 'm',
    status: 'Following',
    lagSeconds: 0,
    pending: false,
    lagThresholdSeconds: 5,
    lastProgressAt: NOW - 1000,
    ...over,
  };
}

describe('evaluateHealth', () => {
  it('is ok with every mirror following, and names each with its status and lag', () => {
    const r = evaluateHealth([mirror({ name: 'a' }), mirror({ name: 'b', status: 'Degraded', lagSeconds: 42 })], NOW);
    expect(r).toEqual({
      ok: true,
      mirrors: {
        a: { status: 'Following', healthy: true, lag_seconds: 0 },
        b: { status: 'Degraded', healthy: true, lag_seconds: 42 },
      },
    });
  });

  it('is ok with no mirror selected', () => {
    expect(evaluateHealth([], NOW)).toEqual({ ok: true, mirrors: {} });
  });

  it('is not ok while any mirror is Failed, and says which and why', () => {
    const r = evaluateHealth([mirror({ name: 'a' }), mirror({ name: 'b', status: 'Failed', lagSeconds: null })], NOW);
    expect(r.ok).toBe(false);
    expect(r.mirrors.a.healthy).toBe(true);
    expect(r.mirrors.b).toMatchObject({ status: 'Failed', healthy: false, reason_code: 'failed', lag_seconds: null });
    expect(r.mirrors.b.reason).toMatch(/needs a person/);
  });

  it('is Failed-unhealthy whatever else the mirror knows (even with recent progress and nothing pending)', () => {
    const r = evaluateHealth([mirror({ status: 'Failed', pending: false, lastProgressAt: NOW })], NOW);
    expect(r.ok).toBe(false);
    expect(r.mirrors.m.reason_code).toBe('failed');
  });

  it('is not ok when work is pending and no progress was made for longer than the lag threshold', () => {
    const r = evaluateHealth([mirror({ pending: true, lastProgressAt: NOW - 42_000, lagSeconds: 50 })], NOW);
    expect(r.ok).toBe(false);
    expect(r.mirrors.m).toEqual({
      status: 'Following',
      healthy: false,
      lag_seconds: 50,
      reason_code: 'stalled',
      reason: 'no progress for 42 s with changes pending (lag threshold 5 s)',
    });
  });

  it('counts the threshold as a bound: exactly the threshold is still ok, one millisecond over is not', () => {
    expect(evaluateHealth([mirror({ pending: true, lastProgressAt: NOW - 5000 })], NOW).ok).toBe(true);
    expect(evaluateHealth([mirror({ pending: true, lastProgressAt: NOW - 5001 })], NOW).ok).toBe(false);
  });

  it("uses each mirror's own threshold, and words sub-second ones in tenths", () => {
    const r = evaluateHealth(
      [
        mirror({ name: 'sync', pending: true, lagThresholdSeconds: 0.1, lastProgressAt: NOW - 300 }),
        mirror({ name: 'slow', pending: true, lagThresholdSeconds: 600, lastProgressAt: NOW - 300_000 }),
      ],
      NOW,
    );
    expect(r.ok).toBe(false);
    expect(r.mirrors.sync.reason).toBe('no progress for 0.3 s with changes pending (lag threshold 0.1 s)');
    expect(r.mirrors.slow.healthy).toBe(true);
  });

  it('is ok however long since the last progress when nothing is pending (an idle source)', () => {
    expect(evaluateHealth([mirror({ pending: false, lastProgressAt: NOW - 3_600_000 })], NOW).ok).toBe(true);
  });

  it('does not call a mirror stalled before its first measure of progress', () => {
    expect(evaluateHealth([mirror({ pending: true, lastProgressAt: null, lagSeconds: 3600 })], NOW).ok).toBe(true);
  });

  it('does not call high lag unhealthy while progress is being made (catching up)', () => {
    expect(evaluateHealth([mirror({ pending: true, lagSeconds: 7200, lastProgressAt: NOW - 200 })], NOW).ok).toBe(true);
  });

  it.each(['Paused', 'Standby', 'Stopped', 'Promoted'])(
    'keeps a %s mirror healthy with work pending and no progress',
    (status) => {
      const r = evaluateHealth([mirror({ status, pending: true, lastProgressAt: NOW - 3_600_000 })], NOW);
      expect(r).toEqual({ ok: true, mirrors: { m: { status, healthy: true, lag_seconds: 0 } } });
    },
  );

  it.each(['Starting', 'Bootstrapping', 'Degraded', 'Disconnected'])(
    'applies the stall rule to a %s mirror',
    (status) => {
      const r = evaluateHealth([mirror({ status, pending: true, lastProgressAt: NOW - 60_000 })], NOW);
      expect(r.ok).toBe(false);
      expect(r.mirrors.m.reason_code).toBe('stalled');
    },
  );

  it('reports every mirror, healthy or not, when one is unhealthy', () => {
    const r = evaluateHealth(
      [
        mirror({ name: 'ok' }),
        mirror({ name: 'paused', status: 'Paused' }),
        mirror({ name: 'stuck', pending: true, lastProgressAt: NOW - 10_000 }),
      ],
      NOW,
    );
    expect(r.ok).toBe(false);
    expect(Object.keys(r.mirrors)).toEqual(['ok', 'paused', 'stuck']);
    expect(Object.values(r.mirrors).map((h) => h.healthy)).toEqual([true, true, false]);
    expect(r.mirrors.ok).not.toHaveProperty('reason');
  });
});
