/**
 * A loopback TCP proxy between clients and one server (a worker and a Postgres cluster's destination or
 * source port), to cut the network in tests without touching either end's processes.
 *
 * - blackhole(): a partition. Nothing is forwarded either way (or one way), yet no socket is closed: both
 *   ends keep an ESTABLISHED connection whose kernel still answers TCP keepalives, so only an
 *   application-level timeout (idle_session_timeout, wal_sender_timeout, a client-side receive timeout) can
 *   notice. The proxy stops reading the held sockets (Node reads at most one highWaterMark more into its
 *   buffer, then stops reading from the kernel), so TCP windows fill and the sender's writes back up.
 *   New connections are accepted, but the proxy does not even dial the target for them until heal(): the
 *   server sees nothing, as in a real partition (the client's own connect timeout fires, if it has one).
 *   A close or reset by one end is not passed on to the other until heal() either.
 * - heal(): everything held is delivered, in order, then forwarding goes on as before.
 * - cut(): every current connection is reset (RST to both ends), like a middlebox dropping its state.
 *
 * Loopback only: the proxy listens on 127.0.0.1 and dials 127.0.0.1.
 */
import net from 'node:net';

/** Which way to hold: client -> target, target -> client, or both. */
export type Direction = 'both' | 'toTarget' | 'toClient';

export interface ProxyStats {
  /** Client connections accepted since the start. */
  connections: number;
  /** Client connections not yet closed. */
  open: number;
  /** Bytes forwarded (written on) to the target, and to clients. Held bytes do not count until delivered. */
  bytesToTarget: number;
  bytesToClient: number;
}

export interface TcpProxy {
  /** Where clients connect (127.0.0.1). */
  readonly port: number;
  /** A snapshot of the counters. */
  stats(): ProxyStats;
  /**
   * The local ports of every connection the proxy ever opened to the target: the `client_port` the server
   * reports (pg_stat_activity, inet_client_port()) for a session that goes through this proxy.
   */
  readonly upstreamPorts: ReadonlySet<number>;
  /** Whether anything is held right now. */
  readonly blackholed: boolean;
  blackhole(direction?: Direction): void;
  heal(): void;
  cut(): void;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Resets a socket (RST) whatever its state; resetAndDestroy throws on one already destroyed. */
function reset(s: net.Socket) {
  if (s.destroyed) return;
  if (s.connecting) s.destroy();
  else s.resetAndDestroy();
}

/** One client connection and its connection to the target. */
class Link {
  upstream: net.Socket | null = null;
  /**
   * A close of one end not yet passed on to the other, because the direction towards that other end is
   * held: true for a reset (or error), false for an orderly close.
   */
  private pendingClose: { toClient?: boolean; toTarget?: boolean } = {};

  constructor(
    private readonly proxy: ProxyImpl,
    readonly client: net.Socket,
  ) {
    // Nothing is read from the client before its upstream connection exists (pause() before the 'data'
    // listener is attached, so attaching it does not start the flow).
    client.pause();
    client.on('error', () => {});
    client.once('close', () => proxy.settle(this));
    if (!proxy.holds('toTarget')) this.dial();
  }

  get done() {
    return this.client.destroyed && (!this.upstream || this.upstream.destroyed);
  }

  /** Dials the target: at accept time, or at heal() for a connection accepted during a black hole. */
  dial() {
    if (this.upstream || this.client.destroyed) return;
    const up = net.connect({ host: HOST, port: this.proxy.targetPort, allowHalfOpen: true });
    this.upstream = up;
    let connected = false;
    up.on('error', () => {});
    up.pause();
    up.once('connect', () => {
      connected = true;
      if (up.localPort) this.proxy.upstreamPorts.add(up.localPort);
      if (this.client.destroyed) {
        // The client gave up while we dialed: nobody to forward for.
        up.destroy();
        return;
      }
      this.forward(this.client, up, 'toTarget');
      this.forward(up, this.client, 'toClient');
      this.resume();
    });
    up.once('close', () => {
      // Refused or failed before it was connected: the client sees its connection reset.
      if (!connected) reset(this.client);
      this.proxy.settle(this);
    });
  }

  /**
   * Copies `from` to `to` with backpressure. While the direction is held `from` is paused, so no 'data' is
   * emitted, and a FIN or reset is kept in pendingClose (behind the data before it, still buffered).
   */
  private forward(from: net.Socket, to: net.Socket, dir: 'toTarget' | 'toClient') {
    from.on('data', (chunk: Buffer) => {
      if (this.proxy.holds(dir)) {
        // hold() paused the socket, but chunks Node had already read may still be emitted: back into the
        // buffer they go, in order, and stay there until heal().
        from.pause();
        from.unshift(chunk);
        return;
      }
      this.proxy.count(dir, chunk.length);
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.proxy.holds(dir)) from.resume();
    });
    // Node emits 'end' even on a paused socket once its buffer is empty (it reads the EOF itself): held too.
    from.on('end', () => {
      if (this.proxy.holds(dir)) this.pendingClose[dir] ??= false;
      else to.end();
    });
    from.on('close', (hadError) => {
      if (to.destroyed) return;
      if (this.proxy.holds(dir)) this.pendingClose[dir] = hadError || this.pendingClose[dir] === true;
      else if (hadError) reset(to);
      else to.end();
    });
  }

  /** Resumes every direction that is not held nor backpressured, and passes on the closes it held. */
  resume() {
    const up = this.upstream;
    if (!up || up.connecting) return;
    for (const [dir, from, to] of [
      ['toTarget', this.client, up],
      ['toClient', up, this.client],
    ] as const) {
      if (this.proxy.holds(dir)) continue;
      const closed = this.pendingClose[dir];
      if (closed !== undefined) {
        delete this.pendingClose[dir];
        if (closed) reset(to);
        else to.end();
      }
      if (!to.writableNeedDrain) from.resume();
    }
  }

  /** Pauses the sockets whose direction is held now: they are no longer read. */
  hold() {
    if (this.proxy.holds('toTarget')) this.client.pause();
    if (this.upstream && this.proxy.holds('toClient')) this.upstream.pause();
  }

  reset() {
    reset(this.client);
    if (this.upstream) reset(this.upstream);
  }
}

class ProxyImpl implements TcpProxy {
  port = 0;
  readonly upstreamPorts = new Set<number>();
  private held = { toTarget: false, toClient: false };
  private counters = { connections: 0, bytesToTarget: 0, bytesToClient: 0 };
  /** Links with a socket still open (a link whose client left keeps its held upstream until heal()). */
  private readonly links = new Set<Link>();
  readonly server: net.Server;

  constructor(readonly targetPort: number) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.counters.connections++;
      this.links.add(new Link(this, socket));
    });
  }

  settle(l: Link) {
    if (l.done) this.links.delete(l);
  }

  holds(dir: 'toTarget' | 'toClient') {
    return this.held[dir];
  }

  count(dir: 'toTarget' | 'toClient', n: number) {
    if (dir === 'toTarget') this.counters.bytesToTarget += n;
    else this.counters.bytesToClient += n;
  }

  get blackholed() {
    return this.held.toTarget || this.held.toClient;
  }

  stats(): ProxyStats {
    let open = 0;
    for (const l of this.links) if (!l.client.destroyed) open++;
    return { ...this.counters, open };
  }

  blackhole(direction: Direction = 'both') {
    if (direction !== 'toClient') this.held.toTarget = true;
    if (direction !== 'toTarget') this.held.toClient = true;
    for (const l of this.links) l.hold();
  }

  heal() {
    this.held = { toTarget: false, toClient: false };
    for (const l of [...this.links]) {
      if (l.upstream) l.resume();
      else l.dial();
    }
  }

  cut() {
    for (const l of this.links) l.reset();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      // close() calls back once every accepted connection is closed, which cut() sees to.
      this.server.close(() => resolve());
      this.cut();
    });
  }
}

/** Starts a proxy on a free loopback port, forwarding to 127.0.0.1:targetPort. */
export async function startProxy(targetPort: number): Promise<TcpProxy> {
  const p = new ProxyImpl(targetPort);
  await new Promise<void>((resolve, reject) => {
    p.server.once('error', reject);
    p.server.listen(0, HOST, () => {
      p.server.off('error', reject);
      resolve();
    });
  });
  p.port = (p.server.address() as net.AddressInfo).port;
  return p;
}
