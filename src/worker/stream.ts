/**
 * The replication stream of one mirror: pg-logical-replication's service with our own pgoutput plugin
 * (our decoder keeps every value as the text Postgres sent; the library's parsers turn timestamptz into
 * Dates and lose microseconds). Acknowledgement is ours alone (DESIGN.md invariant 4): the library's
 * timer is off (timeoutSeconds 0, auto false), and feedback carries only positions applied and committed
 * on the destination.
 *
 * Delivery is ours too, for speed and for order. The library's flow control awaits every message through
 * promises; here a handler runs synchronously for each message, which is what it does almost always, and
 * only when it returns a promise (it needs the destination, or the apply pipeline is full) does the stream
 * pause the socket and queue what arrives meanwhile. Keepalives go through the same queue, so a handler
 * that sees a keepalive has seen every message sent before it.
 */
import { LogicalReplicationService } from 'pg-logical-replication';
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { clientConfig } from '../db/connect.js';
import { bigIntToLsn } from '../db/lsn.js';
import { quoteIdent, quoteLiteral } from '../db/quote.js';
import { decodePgoutput, type PgoutputMessage } from './decode.js';

/**
 * Text I/O settings both ends agree on, whatever the servers', databases' or roles' defaults, so every value
 * round-trips exactly: the walsender prints values with them, the destination session parses with them (the
 * snapshot copy uses the same list).
 */
export const TEXT_IO_OPTIONS =
  '-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c TimeZone=UTC -c lc_monetary=C -c xmloption=content';

/** What the plugin hands the library: a message, or why it could not be decoded (thrown later, in order). */
type Decoded = PgoutputMessage | { tag: 'undecodable'; error: Error };

class MirrorsPgoutputPlugin {
  readonly options: unknown = {};
  constructor(private publication: string) {}
  get name() {
    return 'pgoutput';
  }
  parse(buffer: Buffer): Decoded {
    // The library calls this inside pg's socket handler, where a throw would escape every listener.
    try {
      return decodePgoutput(buffer);
    } catch (error) {
      return { tag: 'undecodable', error: error as Error };
    }
  }
  async start(client: pg.Client, slot: string, lastLsn: string) {
    // Logical decoding messages (PostgreSQL 14+): a promotion's fence marker then reaches the worker in its own
    // transaction, applied at once, instead of only with the next keepalive (up to a ping interval later).
    const version = Number((await client.query('SHOW server_version_num')).rows[0].server_version_num);
    const messages = version >= 140000 ? `, messages 'true'` : '';
    // publication_names is a list of identifiers: quote the name, then the whole list as a literal.
    return client.query(
      `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${lastLsn} (proto_version '1', publication_names ${quoteLiteral(quoteIdent(this.publication))}${messages})`,
    );
  }
}

export interface StreamHandlers {
  /** Returns a promise only when it must wait; the stream delivers nothing else until it settles. */
  onMessage(msg: PgoutputMessage): void | Promise<void>;
  /**
   * The server's keepalive (walEnd: everything up to it is sent; sentAt: the server's clock when it sent it),
   * after every message sent before it.
   */
  onKeepalive(walEnd: bigint, sentAt: number): void | Promise<void>;
  /**
   * The server asks for a reply (it cuts the stream after wal_sender_timeout without one): called at once,
   * not behind queued messages.
   */
  onReplyRequested(): void;
  onError(err: Error): void;
}

type Item = { msg: PgoutputMessage } | { walEnd: bigint; sentAt: number };

/**
 * pg-logical-replication 2.5 converts the keepalive's send time with the wrong epoch (946080000000 ms,
 * 1999-12-25, instead of Postgres's 2000-01-01 = 946684800000 ms): its timestamps are 7 days early.
 */
export const LIBRARY_KEEPALIVE_EPOCH_ERROR_MS = 946_684_800_000 - 946_080_000_000;

export class ReplicationStream {
  private service: LogicalReplicationService;
  private ended: Promise<void> | null = null;
  /** Items received while a handler's promise is pending, in arrival order. */
  private queue: Item[] = [];
  private waiting = false;
  private failed = false;
  /** When the stream last delivered anything (performance.now()), or resumed reading after holding. */
  private lastHeard = performance.now();
  /** Whether the server has sent anything on this connection (it authenticated and started streaming). */
  streaming = false;

  constructor(
    peer: Peer,
    private slot: string,
    private publication: string,
    private handlers: StreamHandlers,
    applicationName: string,
  ) {
    const cfg = {
      ...clientConfig(peer, { replication: true, applicationName, options: TEXT_IO_OPTIONS }),
      replication: 'database' as const,
    };
    this.service = new LogicalReplicationService(cfg, {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service.on('error', (err: Error) => this.fail(err));
    this.service.on('data', (_lsn: string, msg: Decoded) => {
      this.heard();
      if (msg.tag === 'undecodable') this.fail(msg.error);
      else this.deliver({ msg });
    });
    this.service.on('heartbeat', (lsn: string, ts: number, shouldRespond: boolean) => {
      this.heard();
      if (shouldRespond) this.handlers.onReplyRequested();
      this.deliver({ walEnd: parseLibraryLsn(lsn), sentAt: ts + LIBRARY_KEEPALIVE_EPOCH_ERROR_MS });
    });
  }

  private heard() {
    this.lastHeard = performance.now();
    this.streaming = true;
  }

  /**
   * How long the source has been silent while we were reading (0 while we hold the stream for backpressure:
   * silence we cause is not the source's). The worker's receive timeout compares it with its limit.
   */
  silentForMs(): number {
    return this.waiting ? 0 : performance.now() - this.lastHeard;
  }

  private fail(err: Error) {
    this.failed = true;
    this.queue = [];
    this.handlers.onError(err);
  }

  private deliver(item: Item) {
    if (this.failed) return;
    if (this.waiting) {
      this.queue.push(item);
      return;
    }
    this.handle(item);
    if (this.waiting) this.socket()?.pause();
  }

  /** Runs one item's handler; if it returns a promise, holds everything after it until it settles. */
  private handle(item: Item) {
    let r: void | Promise<void>;
    try {
      r = 'msg' in item ? this.handlers.onMessage(item.msg) : this.handlers.onKeepalive(item.walEnd, item.sentAt);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!r) return;
    this.waiting = true;
    r.then(
      () => this.drain(),
      (err) => this.fail(err as Error),
    );
  }

  private drain() {
    this.waiting = false;
    this.lastHeard = performance.now();
    while (!this.waiting && !this.failed && this.queue.length > 0) this.handle(this.queue.shift()!);
    if (!this.waiting && !this.failed) this.socket()?.resume();
  }

  /** The replication connection's socket; pausing it makes the walsender wait (TCP backpressure). */
  private socket(): { pause(): void; resume(): void } | undefined {
    // pg-logical-replication 2.5 pauses this same socket for its own flow control (pinned ~2.5).
    return (this.service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection
      ?.stream;
  }

  /** Starts streaming from `fromLsn` (the server starts at the slot's confirmed position if that is later). */
  start(fromLsn: bigint): Promise<void> {
    this.ended = this.service
      .subscribe(new MirrorsPgoutputPlugin(this.publication) as never, this.slot, bigIntToLsn(fromLsn))
      .then(() => undefined);
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

  /** Ends the stream; a source that does not answer (black-holed) gets its socket destroyed after `graceMs`. */
  async stop(graceMs = 2_000): Promise<void> {
    this.failed = true;
    this.queue = [];
    const socket = this.socket() as { destroy?(): void } | undefined;
    const stopped = this.service
      .stop()
      .catch(() => {})
      .then(() => this.ended?.catch(() => {}));
    const timer = setTimeout(() => socket?.destroy?.(), graceMs);
    await stopped;
    clearTimeout(timer);
  }
}

/** pg-logical-replication prints LSNs as upper/lower hex without padding; both forms parse the same. */
function parseLibraryLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt('0x' + (hi || '0')) << 32n) | BigInt('0x' + (lo || '0'));
}
