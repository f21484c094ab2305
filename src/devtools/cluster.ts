/**
 * Throw-away PostgreSQL clusters for tests, the demo and benchmarks: initdb/pg_ctl of the system's
 * PostgreSQL, on a free loopback port, with wal_level=logical and password (scram) auth over TCP.
 *
 * Owns: a per-process temp root (<base>/mirrors-pg-XXXXXX) holding one initdb'd template and one data dir per
 * cluster; nothing outside it (except a socket dir under /tmp when the temp root is too long). <base> is
 * MIRRORS_PG_TMPDIR, else /dev/shm when it is a roomy tmpfs, else os.tmpdir().
 * Must not: be imported by the CLI or the worker — this is developer tooling only.
 *
 * Postgres refuses to run as root, so when we are root every server binary runs as the `postgres` OS user
 * and everything it touches is owned by that user.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db/quote.js';

export interface ClusterOptions {
  name: string;
  settings?: Record<string, string | number>;
  superuserPassword?: string;
}

export interface Cluster {
  name: string;
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  /** superuser connection url (user postgres), database postgres */
  url(database?: string): string;
  /** run SQL through `pg` (one short connection), return rows */
  query<T = any>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  createDatabase(name: string): Promise<void>;
  /** fast shutdown, remove the data dir */
  stop(): Promise<void>;
  /** stop + start keeping data and port */
  restart(): Promise<void>;
  /** immediate shutdown (-m immediate) keeping data, for crash tests */
  kill(): Promise<void>;
  start(): Promise<void>;
}

const ROOT_PREFIX = 'mirrors-pg-';
const OWNER_FILE = 'owner.pid';
const LOG_FILE = 'postgresql.log';
const CONF_FILE = 'mirrors.conf';
/** Unix socket paths are limited to 107 bytes; keep room for "/.s.PGSQL.65535". */
const MAX_SOCKET_DIR = 90;
const START_ATTEMPTS = 5;

/** env MIRRORS_PG_BIN wins, else the newest /usr/lib/postgresql/<version>/bin that has initdb. */
export function findPgBin(): string {
  const fromEnv = process.env.MIRRORS_PG_BIN;
  if (fromEnv) {
    if (!fs.existsSync(path.join(fromEnv, 'initdb'))) {
      throw new Error(`MIRRORS_PG_BIN=${fromEnv} has no initdb in it; point it at a PostgreSQL server bin directory`);
    }
    return fromEnv;
  }
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(base);
  } catch {
    // no PostgreSQL installed at all: fall through to the error below
  }
  const found = versions
    .filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  if (found.length === 0) {
    throw new Error(
      'no PostgreSQL server binaries found (looked for /usr/lib/postgresql/*/bin/initdb). ' +
        'Install them (Debian/Ubuntu: apt-get install postgresql-15) or set MIRRORS_PG_BIN to a directory ' +
        'containing initdb, pg_ctl and postgres.',
    );
  }
  return path.join(base, found[0], 'bin');
}

// ---------------------------------------------------------------------------------------------------------
// Running as the postgres OS user

interface RunAs {
  uid: number;
  gid: number;
}

let runAsCache: RunAs | null | undefined;

/** null when we are not root (run binaries as ourselves). */
function runAs(): RunAs | null {
  if (runAsCache !== undefined) return runAsCache;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return (runAsCache = null);
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new Error(
      'running as root but there is no `postgres` OS user to run the server as (Postgres refuses root). ' +
        'Install postgresql-15 (it creates the user) or run the tests as a non-root user.',
    );
  }
  const [, , uid, gid] = line.split(':');
  return (runAsCache = { uid: Number(uid), gid: Number(gid) });
}

function chownToPg(p: string): void {
  const who = runAs();
  if (who) fs.chownSync(p, who.uid, who.gid);
}

/** The environment without PG* variables, so a developer's PGPORT/PGDATA/PGHOST cannot leak in. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return env;
}

function pgSpawnOptions(asPostgres: boolean): SpawnOptions {
  const who = asPostgres ? runAs() : null;
  return { cwd: ensureRoot(), env: cleanEnv(), ...(who ? { uid: who.uid, gid: who.gid } : {}) };
}

interface RunResult {
  code: number | null;
  out: string;
}

/** initdb/cp/pg_ctl still running, killed by the exit handler so none of them writes into a removed root. */
const inFlight = new Set<ChildProcess>();

function run(cmd: string, args: string[], asPostgres = true): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Own process group, so the exit handler can kill initdb together with the postgres it runs.
    const child = spawn(cmd, args, {
      ...pgSpawnOptions(asPostgres),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    inFlight.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => {
      inFlight.delete(child);
      reject(e);
    });
    child.on('close', (code) => {
      inFlight.delete(child);
      resolve({ code, out });
    });
  });
}

async function runOk(cmd: string, args: string[], asPostgres = true): Promise<string> {
  const r = await run(cmd, args, asPostgres);
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.code}):\n${r.out}`);
  return r.out;
}

// ---------------------------------------------------------------------------------------------------------
// The per-process temp root, its cleanup, and the template

let root: string | undefined;
const live = new Set<PgCluster>();
const portsInUse = new Set<number>();
let counter = 0;
let templatePromise: Promise<string> | undefined;

const SHM = '/dev/shm';
const SHM_MIN_FREE = 1024 ** 3;

/**
 * Where data dirs go. A tmpfs makes initdb ~3x and copying the template ~20x faster than a disk here, but a
 * container's default 64 MB /dev/shm cannot hold even one cluster: use it only when it has room.
 * Benchmarks loading a lot of data should set MIRRORS_PG_TMPDIR to a disk.
 */
function tempBase(): string {
  if (process.env.MIRRORS_PG_TMPDIR) return process.env.MIRRORS_PG_TMPDIR;
  try {
    const st = fs.statfsSync(SHM);
    fs.accessSync(SHM, fs.constants.W_OK);
    if (st.bavail * st.bsize >= SHM_MIN_FREE) return SHM;
  } catch {
    // no usable /dev/shm
  }
  return os.tmpdir();
}

function ensureRoot(): string {
  if (root) return root;
  sweepStaleRoots();
  const dir = fs.mkdtempSync(path.join(tempBase(), ROOT_PREFIX));
  fs.writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
  chownToPg(dir);
  root = dir;
  installExitHandlers();
  return dir;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function stopSync(dataDir: string): void {
  if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  try {
    spawnSync(path.join(findPgBin(), 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10'], {
      ...pgSpawnOptionsNoRoot(),
      stdio: 'ignore',
    });
  } catch {
    // best effort: we are cleaning up
  }
}

/** Like pgSpawnOptions but without creating the root (used while cleaning up). */
function pgSpawnOptionsNoRoot(): SpawnOptions {
  const who = runAs();
  return { cwd: '/', env: cleanEnv(), ...(who ? { uid: who.uid, gid: who.gid } : {}) };
}

/** Roots left behind by processes that died without running their exit handler (SIGKILL, OOM). */
function sweepStaleRoots(): void {
  const dirs: string[] = [];
  for (const base of new Set([tempBase(), SHM, os.tmpdir()])) {
    try {
      for (const e of fs.readdirSync(base)) if (e.startsWith(ROOT_PREFIX)) dirs.push(path.join(base, e));
    } catch {
      // base does not exist
    }
  }
  for (const dir of dirs) {
    try {
      const pid = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8'));
      if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
      for (const sub of fs.readdirSync(dir)) stopSync(path.join(dir, sub));
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // not ours, being created right now, or already gone
    }
  }
}

/** Exit handler: synchronous and best effort. Also stops a postmaster whose start was still in progress. */
function cleanupSync(): void {
  for (const child of inFlight) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  inFlight.clear();
  for (const c of live) c.killSync();
  live.clear();
  if (!root) return;
  try {
    for (const sub of fs.readdirSync(root)) stopSync(path.join(root, sub));
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  } catch {
    // best effort
  }
  root = undefined;
  templatePromise = undefined;
}

let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupSync);
  // Only take over a signal nobody else handles; re-raise it afterwards so the default action still happens.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) > 0) continue;
    const onSignal = () => {
      cleanupSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

const HBA = [
  '# written by mirrors devtools/cluster.ts',
  'local   all          all                  trust',
  'local   replication  all                  trust',
  'host    all          all  127.0.0.1/32    scram-sha-256',
  'host    replication  all  127.0.0.1/32    scram-sha-256',
  '',
].join('\n');

/** initdb into dir, with our pg_hba.conf and an include of the per-cluster settings file. */
async function initdb(dir: string): Promise<void> {
  const bin = findPgBin();
  await runOk(path.join(bin, 'initdb'), [
    '-D',
    dir,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  fs.writeFileSync(path.join(dir, 'pg_hba.conf'), HBA);
  fs.appendFileSync(
    path.join(dir, 'postgresql.conf'),
    `\n# per-cluster settings written by mirrors\ninclude '${CONF_FILE}'\n`,
  );
}

/**
 * initdb once per process and copy the result (cp -a keeps owner and modes): ~0.1 s instead of ~0.8 s per
 * cluster. Copies share the template's system_identifier; set MIRRORS_PG_NO_TEMPLATE=1 to initdb each one.
 */
async function createDataDir(dataDir: string): Promise<void> {
  if (process.env.MIRRORS_PG_NO_TEMPLATE === '1') {
    await initdb(dataDir);
    return;
  }
  templatePromise ??= (async () => {
    const t = path.join(ensureRoot(), 'template');
    await initdb(t);
    return t;
  })();
  const template = await templatePromise;
  await runOk('cp', ['-a', template, dataDir], false);
}

// ---------------------------------------------------------------------------------------------------------
// Ports

function askOsForPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A free loopback port not already handed to another cluster of this process. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await askOsForPort();
    if (!portsInUse.has(port)) {
      portsInUse.add(port);
      return port;
    }
  }
  throw new Error('could not find a free loopback port');
}

// ---------------------------------------------------------------------------------------------------------
// The cluster

function confValue(v: string | number): string {
  return typeof v === 'number' ? String(v) : quoteLiteral(v);
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'pg';
}

type State = 'new' | 'running' | 'stopped' | 'removed';

class PgCluster implements Cluster {
  readonly host = '127.0.0.1' as const;
  port = 0;
  private state: State = 'new';
  private readonly logFile: string;

  constructor(
    readonly name: string,
    readonly dataDir: string,
    private readonly socketDir: string,
    private readonly settings: Record<string, string | number>,
    password: string,
  ) {
    this.logFile = path.join(dataDir, LOG_FILE);
    // Non-enumerable so the password never shows up when a test logs or snapshots the cluster.
    Object.defineProperty(this, 'password', { value: password, enumerable: false });
  }

  declare private readonly password: string;

  url(database = 'postgres'): string {
    return `postgresql://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  async query<T = any>(sql: string, params?: unknown[], database?: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      const res = await client.query(sql, params as any[] | undefined);
      return res.rows as T[];
    } finally {
      await client.end();
    }
  }

  async createDatabase(name: string): Promise<void> {
    await this.query(`CREATE DATABASE ${quoteIdent(name)}`);
  }

  private writeConf(): void {
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port: this.port,
      unix_socket_directories: this.socketDir,
      wal_level: 'logical',
      max_replication_slots: 20,
      max_wal_senders: 20,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '128MB',
      max_connections: 100,
      logging_collector: 'off',
      log_destination: 'stderr',
      ...this.settings,
    };
    const file = path.join(this.dataDir, CONF_FILE);
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
    fs.writeFileSync(file, `# written by mirrors devtools/cluster.ts\n${lines.join('\n')}\n`);
    chownToPg(file);
  }

  private logTail(from = 0, lines = 30): string {
    try {
      const text = fs.readFileSync(this.logFile).subarray(from).toString();
      return text
        .split('\n')
        .slice(-lines - 1)
        .join('\n');
    } catch {
      return '(no server log)';
    }
  }

  private logSize(): number {
    try {
      return fs.statSync(this.logFile).size;
    } catch {
      return 0;
    }
  }

  async start(): Promise<void> {
    if (this.state === 'running') return;
    if (this.state === 'removed') throw new Error(`cluster ${this.name} was stopped and its data dir removed`);
    // Only the first start may move to another port; afterwards the port is part of the cluster's identity.
    const mayMove = this.state === 'new';
    const pgCtl = path.join(findPgBin(), 'pg_ctl');
    for (let attempt = 1; ; attempt++) {
      if (this.port === 0) this.port = await freePort();
      this.writeConf();
      const logFrom = this.logSize();
      const r = await run(pgCtl, ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60']);
      if (r.code === 0) break;
      const newLog = this.logTail(logFrom, 1000);
      if (
        mayMove &&
        attempt < START_ATTEMPTS &&
        /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(newLog)
      ) {
        portsInUse.delete(this.port);
        this.port = 0;
        continue;
      }
      throw new Error(
        `could not start PostgreSQL cluster ${this.name} (port ${this.port}, data ${this.dataDir}):\n` +
          `${r.out.trim()}\n--- last 30 lines of ${this.logFile} ---\n${this.logTail()}`,
      );
    }
    this.state = 'running';
    live.add(this);
    if (mayMove) await this.setPassword();
  }

  /** Through the socket, where auth is trust: the TCP side needs the password. */
  private async setPassword(): Promise<void> {
    const client = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      await client.query(`ALTER ROLE postgres PASSWORD ${quoteLiteral(this.password)}`);
    } finally {
      await client.end();
    }
  }

  private async pgCtlStop(mode: 'fast' | 'immediate'): Promise<void> {
    if (this.state !== 'running') return;
    await runOk(path.join(findPgBin(), 'pg_ctl'), ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60']);
    this.state = 'stopped';
    live.delete(this);
  }

  async stop(): Promise<void> {
    if (this.state === 'removed') return;
    await this.pgCtlStop('fast');
    this.state = 'removed';
    live.delete(this);
    portsInUse.delete(this.port);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    fs.rmSync(this.socketDir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    await this.pgCtlStop('fast');
    await this.start();
  }

  async kill(): Promise<void> {
    await this.pgCtlStop('immediate');
  }

  /** For the exit handler: synchronous, best effort. */
  killSync(): void {
    if (this.state === 'running') stopSync(this.dataDir);
    this.state = 'stopped';
    try {
      fs.rmSync(this.socketDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

function makeSocketDir(rootDir: string, n: number): string {
  let dir = path.join(rootDir, `s${n}`);
  if (dir.length > MAX_SOCKET_DIR) dir = fs.mkdtempSync('/tmp/mirrors-pgs-');
  else fs.mkdirSync(dir, { mode: 0o700 });
  chownToPg(dir);
  return dir;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  findPgBin(); // fail early with the install hint
  const rootDir = ensureRoot();
  const n = ++counter;
  const dataDir = path.join(rootDir, `${safeName(opts.name)}-${n}`);
  await createDataDir(dataDir);
  const socketDir = makeSocketDir(rootDir, n);
  const cluster = new PgCluster(
    opts.name,
    dataDir,
    socketDir,
    opts.settings ?? {},
    opts.superuserPassword ?? 'postgres',
  );
  try {
    await cluster.start();
  } catch (e) {
    await cluster.stop().catch(() => undefined);
    throw e;
  }
  return cluster;
}
