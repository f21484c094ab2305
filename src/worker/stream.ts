/**
 * The replication stream of one mirror: pg-logical-replication's service with our own pgoutput plugin
 * (our decoder keeps every value as the text Postgres sent; the library's parsers turn timestamptz into
 * Dates and lose microseconds). Acknowledgement is ours alone (DESIGN.md invariant 4): the library's
 * timer is off (timeoutSeconds 0, auto false), and feedback carries only positions applied and committed
 * on the destination.
 */
import { LogicalReplicationService } from 'pg-logical-replication';
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { clientConfig } from '../db/connect.js';
import { bigIntToLsn } from '../db/lsn.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { decodePgoutput, type PgoutputMessage } from './decode.js';

/** Text output settings both ends agree on, so every value round-trips exactly. */
export const TEXT_IO_OPTIONS = '-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c TimeZone=UTC';

class MirrorsPgoutputPlugin {
  readonly options: unknown = {};
  constructor(private publication: string) {}
  get name() {
    return 'pgoutput';
  }
  parse(buffer: Buffer): PgoutputMessage {
    return decodePgoutput(buffer);
  }
  start(client: pg.Client, slot: string, lastLsn: string) {
    // publication_names is a list of identifiers: quote the name, then the whole list as a literal.
    return client.query(
      `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${lastLsn} (proto_version '1', publication_names ${quoteLiteral(quoteIdent(this.publication))})`,
    );
  }
}

export interface StreamHandlers {
  onMessage(msg: PgoutputMessage): Promise<void>;
  /** The server's keepalive; `idle` is true when every message received so far has been handled. */
  onKeepalive(walEnd: bigint, shouldRespond: boolean, idle: boolean): void;
  onError(err: Error): void;
}

export class ReplicationStream {
  private service: LogicalReplicationService;
  private ended: Promise<void> | null = null;

  constructor(peer: Peer, private slot: string, private publication: string, handlers: StreamHandlers, applicationName: string) {
    const cfg = { ...clientConfig(peer, { replication: true, applicationName, options: TEXT_IO_OPTIONS }), replication: 'database' as const };
    this.service = new LogicalReplicationService(cfg, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true },
    });
    this.service.on('error', (err: Error) => handlers.onError(err));
    this.service.on('data', (_lsn: string, msg: PgoutputMessage) => handlers.onMessage(msg));
    this.service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      handlers.onKeepalive(parseLibraryLsn(lsn), shouldRespond, this.idle());
    });
  }

  /** Starts streaming from `fromLsn` (the server starts at the slot's confirmed position if that is later). */
  start(fromLsn: bigint): Promise<void> {
    this.ended = this.service.subscribe(new MirrorsPgoutputPlugin(this.publication) as never, this.slot, bigIntToLsn(fromLsn)).then(() => undefined);
    return this.ended;
  }

  /**
   * Reports `lsn` as written, flushed and applied. The library's acknowledge() sends lsn + 1 (it treats
   * its argument as the last byte received); we pass lsn - 1 so the server gets exactly the end of the last
   * applied commit, as Postgres's own apply worker reports it: one byte more could skip a transaction
   * whose commit record starts right there after a restart.
   */
  async feedback(lsn: bigint, requestReply = false): Promise<void> {
    if (lsn <= 0n || this.service.isStop()) return;
    await this.service.acknowledge(bigIntToLsn(lsn - 1n), requestReply);
  }

  /**
   * Whether every XLogData the library received has reached our handler. pg-logical-replication 2.5
   * queues messages under flow control; its queue is private, so this reads it (pinned ~2.5 in package.json).
   */
  private idle(): boolean {
    return this.queueEmpty() && !(this.service as unknown as { _processing?: boolean })._processing;
  }

  /** No received message is waiting for our handler (true inside the handler of the last one). */
  queueEmpty(): boolean {
    return ((this.service as unknown as { _messageQueue?: unknown[] })._messageQueue?.length ?? 0) === 0;
  }

  async stop(): Promise<void> {
    await this.service.stop().catch(() => {});
    await this.ended?.catch(() => {});
  }
}

/** pg-logical-replication prints LSNs as upper/lower hex without padding; both forms parse the same. */
function parseLibraryLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt('0x' + (hi || '0')) << 32n) | BigInt('0x' + (lo || '0'));
}
