/** The degrade policy's decision (worker/sync-guardian.ts decide): pure, on constructed readings. */
import { describe, expect, it } from 'vitest';
import { decide, type GuardState, type SyncReading } from '../../src/worker/sync-guardian.js';

const policy = [
  { name: 'a', degradeAfterMs: 3_000, quorum: 1 },
  { name: 'b', degradeAfterMs: null, quorum: 1 },
];
const state = (): GuardState => ({ progress: new Map(), dropped: new Map(), previousLsn: null });
const reading = (over: Partial<SyncReading> = {}): SyncReading => ({
  value: 'ANY 1 ("mirrors_a", "mirrors_b")',
  currentLsn: '0/1000',
  oldestWaitMs: null,
  walsenders: [
    { name: 'mirrors_a', state: 'streaming', flushLsn: '0/1000' },
    { name: 'mirrors_b', state: 'streaming', flushLsn: '0/1000' },
  ],
  ...over,
});

describe('the degrade policy (on_sync_loss: degrade_after)', () => {
  it('changes nothing while no commit waits, whoever is down', () => {
    const s = state();
    expect(decide(policy, reading({ walsenders: [] }), s, 0)).toBeNull();
    expect(decide(policy, reading({ walsenders: [] }), s, 60_000)).toBeNull();
  });

  it('drops a degrade-policy mirror without a walsender once a commit has waited degrade_after, never a blocking one', () => {
    const s = state();
    const down = reading({ walsenders: [], oldestWaitMs: 2_999 });
    expect(decide(policy, down, s, 0)).toBeNull();
    expect(decide(policy, { ...down, oldestWaitMs: 3_000 }, s, 1_000)).toEqual({
      value: 'ANY 1 ("mirrors_b")',
      dropped: ['a'],
      added: [],
    });
  });

  it('drops a mirror that streams but whose flush position stood still for degrade_after (an I/O stall)', () => {
    const s = state();
    expect(decide(policy, reading(), s, 0)).toBeNull(); // first seen: moved now
    const stalled = reading({ oldestWaitMs: 3_500, currentLsn: '0/2000' });
    expect(decide(policy, stalled, s, 2_000)).toBeNull(); // still for 2 s only
    expect(decide(policy, stalled, s, 3_000)?.dropped).toEqual(['a']);
  });

  it('adds a mirror it dropped back once it streams and has caught up with the source, and only those', () => {
    const s = state();
    s.dropped.set('a', '2026-01-01T00:00:00.000Z');
    const value = 'ANY 1 ("mirrors_b")';
    // Streaming, behind the source's position of the previous tick: not yet.
    expect(
      decide(
        policy,
        reading({
          value,
          currentLsn: '0/5000',
          walsenders: [{ name: 'mirrors_a', state: 'catchup', flushLsn: '0/1000' }],
        }),
        s,
        0,
      ),
    ).toBeNull();
    expect(
      decide(
        policy,
        reading({
          value,
          currentLsn: '0/6000',
          walsenders: [{ name: 'mirrors_a', state: 'streaming', flushLsn: '0/5000' }],
        }),
        s,
        1_000,
      ),
    ).toEqual({ value: 'ANY 1 ("mirrors_a", "mirrors_b")', dropped: [], added: ['a'] });
    // A mirror someone else left out is not the guardian's to add.
    const other = state();
    other.previousLsn = 0n;
    expect(decide(policy, reading({ value: 'ANY 1 ("mirrors_b")' }), other, 0)).toBeNull();
  });

  it('empties the value when the last listed mirror is dropped (commits then wait for none)', () => {
    const s = state();
    const only = [{ name: 'a', degradeAfterMs: 1_000, quorum: 1 }];
    expect(decide(only, reading({ value: 'ANY 1 ("mirrors_a")', walsenders: [], oldestWaitMs: 1_500 }), s, 0)).toEqual({
      value: '',
      dropped: ['a'],
      added: [],
    });
  });
});
