/**
 * The partition proxy (test/support/proxy.ts) against a local echo server: the e2e partition tests trust it
 * to hold bytes without closing anything, to deliver them in order afterwards, and to reset on cut().
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy, type TcpProxy } from '../support/proxy.js';

interface Echo {
  port: number;
  /** Server-side sockets, in accept order. */
  sockets: net.Socket[];
  received: () => number;
  close(): Promise<void>;
}

async function startEcho(): Promise<Echo> {
  const sockets: net.Socket[] = [];
  let received = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', (d) => (received += d.length));
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    received: () => received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Client {
  socket: net.Socket;
  data: () => Buffer;
  /** Bytes received so far (data() concatenates: too slow to poll over megabytes). */
  length: () => number;
  ended: () => boolean;
  closed: Promise<{ hadError: boolean; code?: string }>;
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  let code: string | undefined;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    length += d.length;
  });
  socket.on('end', () => (ended = true));
  socket.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
  const closed = new Promise<{ hadError: boolean; code?: string }>((r) =>
    socket.once('close', (hadError) => r({ hadError, code })),
  );
  await new Promise<void>((r, j) => {
    socket.once('connect', r);
    socket.once('error', j);
  });
  return { socket, data: () => Buffer.concat(chunks), length: () => length, ended: () => ended, closed };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Long enough for bytes to cross loopback many times over, had the proxy forwarded them. */
const SETTLE_MS = 400;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ echo: Echo; proxy: TcpProxy }> {
  const echo = await startEcho();
  const proxy = await startProxy(echo.port);
  cleanups.push(echo.close, () => proxy.close());
  return { echo, proxy };
}

/** A client whose upstream connection is established end to end (one byte echoed). */
async function connected(proxy: TcpProxy): Promise<Client> {
  const c = await connect(proxy.port);
  c.socket.write('.');
  await until('the first echo', () => c.length() === 1);
  return c;
}

describe('partition proxy', () => {
  it('forwards both ways, counts connections and bytes, and names its upstream ports as the server sees them', async () => {
    const { echo, proxy } = await setup();
    const c = await connect(proxy.port);
    c.socket.write('hello');
    await until('the echo', () => c.data().toString() === 'hello');
    expect(proxy.stats()).toEqual({ connections: 1, open: 1, bytesToTarget: 5, bytesToClient: 5 });
    // What a Postgres server would report as client_port for this session.
    expect([...proxy.upstreamPorts]).toEqual([echo.sockets[0].remotePort]);
    // An orderly close goes through, and the connection is no longer counted as open.
    c.socket.end();
    await c.closed;
    await until('the server side to close', () => echo.sockets[0].destroyed);
    await until('open to drop', () => proxy.stats().open === 0);
    expect(proxy.blackholed).toBe(false);
  });

  it('black hole: holds every byte both ways without closing a socket, backs the sender up, accepts new connections without dialing; heal delivers everything in order', async () => {
    const { echo, proxy } = await setup();
    const c1 = await connected(proxy);
    const stats = proxy.stats();
    proxy.blackhole();
    expect(proxy.blackholed).toBe(true);

    // More than loopback's socket buffers can hold (net.ipv4.tcp_wmem and tcp_rmem max are 4 + 32 MB by
    // default): if the proxy stops reading, the kernel windows fill and the rest stays in the sender.
    // A period of 251 bytes: a chunk delivered out of order or twice would not compare equal.
    const big = Buffer.alloc(64 * 1024 * 1024).fill(Buffer.from(Array.from({ length: 251 }, (_, i) => i)));
    c1.socket.write(big);
    const c2 = await connect(proxy.port); // accepted...
    c2.socket.write('second');
    await sleep(SETTLE_MS);

    expect(echo.received()).toBe(1); // ...but nothing reached the server,
    expect(echo.sockets.length).toBe(1); // not even c2's connection,
    expect(c1.data().toString()).toBe('.'); // nothing came back,
    expect(proxy.stats()).toEqual({ ...stats, connections: 2, open: 2 });
    expect(c1.socket.writableLength).toBeGreaterThan(0); // the sender is backed up (windows full),
    for (const s of [c1.socket, c2.socket, echo.sockets[0]]) expect(s.destroyed).toBe(false); // all open.
    expect(c1.socket.readyState).toBe('open');

    proxy.heal();
    await until('c1 to get all of its bytes back', () => c1.length() === 1 + big.length, 30_000);
    expect(c1.data().subarray(1).equals(big)).toBe(true);
    await until("c2's echo", () => c2.data().toString() === 'second');
    expect(echo.sockets.length).toBe(2);
    expect(proxy.stats().bytesToTarget).toBe(1 + big.length + 'second'.length);
    expect(proxy.stats().bytesToClient).toBe(1 + big.length + 'second'.length);
  });

  it('black hole one way (toClient): requests still reach the target, replies are held until heal', async () => {
    const { echo, proxy } = await setup();
    const c = await connected(proxy);
    proxy.blackhole('toClient');
    c.socket.write('ping');
    await until('the request to reach the server', () => echo.received() === 1 + 4);
    await sleep(SETTLE_MS);
    expect(c.data().toString()).toBe('.');
    proxy.heal();
    await until('the held reply', () => c.data().toString() === '.ping');
  });

  it('a close or reset by the server during a black hole reaches the client only at heal, after the data before it', async () => {
    const { echo, proxy } = await setup();
    const orderly = await connected(proxy);
    const reset = await connected(proxy);
    proxy.blackhole();
    echo.sockets[0].end('bye'); // data then FIN
    echo.sockets[1].resetAndDestroy(); // RST
    await sleep(SETTLE_MS);
    expect(orderly.data().toString()).toBe('.');
    expect(orderly.ended()).toBe(false);
    expect(orderly.socket.destroyed).toBe(false);
    expect(reset.socket.destroyed).toBe(false);
    proxy.heal();
    expect((await reset.closed).code).toBe('ECONNRESET');
    await until('the FIN', () => orderly.ended());
    expect(orderly.data().toString()).toBe('.bye');
  });

  it('a client leaving during a black hole takes its server connection with it only at heal', async () => {
    const { echo, proxy } = await setup();
    const c = await connected(proxy);
    proxy.blackhole();
    c.socket.destroy();
    await c.closed;
    await sleep(SETTLE_MS);
    expect(echo.sockets[0].destroyed).toBe(false); // the server learns nothing during the partition
    proxy.heal();
    await until('the server side to close', () => echo.sockets[0].destroyed);
    await until('open to drop', () => proxy.stats().open === 0);
  });

  it('cut resets every connection, held or not, and the proxy goes on serving new ones', async () => {
    const { echo, proxy } = await setup();
    const a = await connected(proxy);
    const b = await connected(proxy);
    proxy.blackhole();
    proxy.cut();
    for (const c of [a, b]) expect(await c.closed).toEqual({ hadError: true, code: 'ECONNRESET' });
    await until('the server sides to close', () => echo.sockets.every((s) => s.destroyed));
    expect(proxy.stats().open).toBe(0);
    proxy.heal();
    const c = await connected(proxy);
    expect(c.data().toString()).toBe('.');
    expect(proxy.stats().connections).toBe(3);
  });

  it('resets the client when the target refuses, and refuses clients once closed', async () => {
    const echo = await startEcho();
    const port = echo.port;
    await echo.close(); // nothing listens there any more
    const proxy = await startProxy(port);
    const c = await connect(proxy.port);
    expect((await c.closed).hadError).toBe(true);
    await proxy.close();
    await expect(connect(proxy.port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
