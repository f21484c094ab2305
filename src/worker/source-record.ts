/**
 * Keeps the destination's record of the source current (worker/source-facts.ts says what and why): the
 * definitions every FACTS_MS, the pulse with each monitor reading. A failure costs only the record's
 * freshness, never the stream: it is said once per session.
 */
import type { QualifiedName } from '../config/names.js';
import type { Peer } from '../config/types.js';
import type { SourceFacts, SourcePulse } from '../inspect/types.js';
import { CommitRate, FACTS_MS, promotionFacts } from './source-facts.js';
import { inspectSource, type SourceMonitor, type SourceSlotReading } from './source-monitor.js';

export interface SourceRecorderOptions {
  mirror: string;
  peerName: string;
  peer: Peer;
  tables: QualifiedName[];
  monitor: SourceMonitor;
  /** A sync mirror: the pulse also says whether the source counts it as synchronous (the DR loss window). */
  sync: boolean;
  /** Writes a migration-7 column of the mirror's catalog row (through the destination pipeline). */
  write: (column: 'source_facts' | 'source_pulse', value: unknown) => Promise<unknown>;
  warn: (message: string) => void;
}

export class SourceRecorder {
  private facts: SourceFacts | null = null;
  private factsReadAtMs = 0;
  private readonly rate = new CommitRate(Date.now());
  private warned = false;
  /** The walsender's sync_state as last read, and since when (source clock, this session). */
  private syncState: { state: string | null; since: string } | null = null;

  constructor(private readonly o: SourceRecorderOptions) {}

  /** Source transactions just applied (for the commit rate). */
  applied(n: number) {
    this.rate.add(n, Date.now());
  }

  /** With each monitor reading. */
  async beat(reading: SourceSlotReading): Promise<void> {
    try {
      if (!this.facts || Date.now() - this.factsReadAtMs >= FACTS_MS) {
        this.factsReadAtMs = Date.now();
        const live = await inspectSource(this.o.peer, this.o.peerName, `mirrors run ${this.o.mirror} (record)`);
        this.facts = promotionFacts(live, this.o.tables, reading.sourceTime);
        await this.o.write('source_facts', this.facts);
      }
      const sequences = this.facts.sequences.map((q) => ({ schema: q.schema, name: q.name }));
      const values = sequences.length
        ? await this.o.monitor.sequenceValues(sequences, this.facts.server_version_num)
        : [];
      if (this.o.sync && this.syncState?.state !== reading.syncState)
        this.syncState = { state: reading.syncState, since: reading.sourceTime };
      const pulse: SourcePulse = {
        at: reading.sourceTime,
        lsn: reading.currentLsn,
        commits_per_s: this.rate.perSecond(Date.now()),
        sequences: values,
      };
      if (this.syncState)
        pulse.sync = { state: this.syncState.state, since: this.syncState.since, standby_names: reading.standbyNames };
      await this.o.write('source_pulse', pulse);
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      this.o.warn(
        `cannot record what a promotion without the source would need (${(err as Error).message}); a disaster-recovery promotion would use older facts`,
      );
    }
  }
}
