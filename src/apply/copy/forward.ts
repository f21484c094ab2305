/**
 * Streaming one part: the source's CopyData messages go to the destination as they are.
 *
 * A text COPY OUT sends one CopyData message per row, and a COPY IN accepts CopyData messages of any split:
 * so the bytes the source sends, message headers included, are already what the destination wants. Both
 * sides are pg "submittables" (what pg-copy-streams does): pg runs each when the connection's turn comes
 * and hands it the server's replies, except that the source's socket is read directly between the query
 * and its CopyDone. Only message headers are looked at (by the framer); rows are never cut out of the
 * socket's chunks.
 *
 * Owns: the two sockets for the length of a part — the source's 'data' events (pg's own listener set aside
 * and given back), pausing the source while the destination's send buffer is full.
 * Must not: parse COPY framing (framer.ts does), buffer a part (bytes are written as they arrive), or
 * outlive the part: once the COPY OUT is over, every byte and the socket are pg's again.
 */
import type pg from 'pg';
import { MirrorsError } from '../../errors.js';
import { CopyDataFramer, MSG_COPY_DONE, type Framed } from './framer.js';

type Listener = (chunk: Buffer) => void;
type Destination = NodeJS.WritableStream & { writableLength: number };

const COPY_DONE = Buffer.from([MSG_COPY_DONE, 0, 0, 0, 4]);
const ignore = () => {};

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Settled promises nobody awaits any more (the other side failed first) must not count as unhandled.
  promise.catch(ignore);
  return { promise, resolve, reject };
}

function commandRows(msg: { text?: string } | undefined): number {
  const m = /^COPY (\d+)/.exec(msg?.text ?? '');
  return m ? Number(m[1]) : 0;
}

/** The destination `COPY ... FROM STDIN`: `ready` gives the socket once the server takes CopyData. */
export class CopyIn implements pg.Submittable {
  private readonly readyD = deferred<Destination>();
  private readonly doneD = deferred<number>();
  readonly ready = this.readyD.promise;
  /** The command tag's row count, once the server has committed. */
  readonly done = this.doneD.promise;
  private connection: pg.Connection | undefined;
  private rowCount = 0;

  constructor(private readonly text: string) {}

  submit(connection: pg.Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  /** After the last CopyData: the server commits and answers CommandComplete, ReadyForQuery. */
  end(): void {
    this.connection!.stream.write(COPY_DONE);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    this.readyD.resolve(connection.stream as unknown as Destination);
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = commandRows(msg);
  }

  handleReadyForQuery(): void {
    this.doneD.resolve(this.rowCount);
  }

  handleError(err: unknown): void {
    this.readyD.reject(err);
    this.doneD.reject(err);
  }
}

/**
 * The source `COPY ... TO STDOUT`. From submit() to the CopyDone it owns the socket's 'data' events (pg's own
 * listener is set aside), writes what the framer forwards to the destination socket once forwardTo() gives
 * it, and hands pg back the socket and the framer's rest: CopyDone's followers (CommandComplete,
 * ReadyForQuery) or an ErrorResponse, which pg turns into handleError.
 */
export class CopyOut implements pg.Submittable {
  private readonly doneD = deferred<void>();
  /** Settles at the source's ReadyForQuery, or its first error. */
  readonly done = this.doneD.promise;
  /** Rows forwarded so far, as the framer counts them (see CopyDataFramer). */
  rows = 0;
  private readonly framer: CopyDataFramer;
  private socket: (NodeJS.ReadableStream & NodeJS.EventEmitter) | undefined;
  private pgListener: Listener | undefined;
  private out: Destination | undefined;
  private waitingForDrain = false;
  private detached = false;

  constructor(
    private readonly text: string,
    binary: boolean,
    private readonly highWaterMark: number,
    private readonly onChunk: (bytes: number, rows: number) => void,
  ) {
    this.framer = new CopyDataFramer(binary);
  }

  submit(connection: pg.Connection): void {
    const socket = connection.stream;
    const listeners = socket.listeners('data') as Listener[];
    if (listeners.length !== 1)
      throw new MirrorsError(
        'INTERNAL',
        `copy: expected pg's one data listener on the source socket, found ${listeners.length}`,
      );
    this.socket = socket;
    this.pgListener = listeners[0];
    socket.removeListener('data', this.pgListener);
    socket.on('data', this.onData);
    // Until the destination is ready for CopyData: the server waits on the full socket.
    socket.pause();
    connection.query(this.text);
  }

  forwardTo(out: Destination): void {
    this.out = out;
    if (!this.detached) this.socket!.resume();
  }

  private readonly onDrain = (): void => {
    this.waitingForDrain = false;
    if (!this.detached) this.socket!.resume();
  };

  private readonly onData = (data: Buffer): void => {
    const out = this.out!;
    const framed = this.framer.push(data);
    for (const run of framed.forward) out.write(run);
    this.rows += framed.rows;
    if (framed.rest) {
      this.detach(framed.rest);
      this.progress(framed);
      return;
    }
    this.progress(framed);
    if (out.writableLength >= this.highWaterMark && !this.waitingForDrain && !this.detached) {
      // write() has returned false: 'drain' comes when the destination socket has sent it all.
      this.waitingForDrain = true;
      this.socket!.pause();
      out.once('drain', this.onDrain);
    }
  };

  private progress(framed: Framed): void {
    if (framed.rows === 0 && framed.bytes === 0) return;
    try {
      this.onChunk(framed.bytes, framed.rows);
    } catch (err) {
      this.doneD.reject(err);
    }
  }

  private detach(rest: Buffer): void {
    const socket = this.socket!;
    this.detached = true;
    socket.removeListener('data', this.onData);
    if (this.waitingForDrain) this.out!.removeListener('drain', this.onDrain);
    socket.on('data', this.pgListener!);
    if (rest.length > 0) this.pgListener!(rest);
    socket.resume();
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.doneD.resolve();
  }

  handleError(err: unknown): void {
    this.doneD.reject(err);
  }
}
