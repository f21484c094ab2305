/**
 * The per-mirror apply lock: a session advisory lock on the mirror's destination, plus a row in mirrors.locks
 * saying who holds it (host, pid, command, since) so a waiting apply can name the holder. The locks an apply
 * holds on one destination share one connection (an apply covering many mirrors must not take one connection
 * each). A lock lives as long as its connection: a killed apply releases it with its session.
 */
import os from 'node:os';
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { MirrorsError } from '../errors.js';

/** Advisory-lock key space of the tool: (class, hashtext(name)). Class 1 = apply, 2 = worker lease. */
export const LOCK_CLASS_APPLY = 0x6d690001;

/** The apply locks held on one destination peer, on one connection. */
export class PeerLocks {
  private readonly held = new Set<string>();

  private constructor(
    private readonly db: pg.Client,
    private readonly command: string,
  ) {}

  static async open(peer: Peer, command: string): Promise<PeerLocks> {
    return new PeerLocks(
      await connectPeer(peer, { applicationName: 'mirrors apply locks', options: '-c synchronous_commit=local' }),
      command,
    );
  }

  has(mirror: string): boolean {
    return this.held.has(mirror);
  }

  /** Waits up to timeoutMs for the mirror's lock, naming the holder once while it waits. */
  async acquire(mirror: string, timeoutMs: number, onWait?: (holder: string) => void): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let warned = false;
    for (;;) {
      const r = await this.db.query('SELECT pg_try_advisory_lock($1::int, hashtext($2::text)) AS ok', [
        LOCK_CLASS_APPLY,
        mirror,
      ]);
      if (r.rows[0].ok) break;
      const holder = await this.describeHolder(mirror);
      if (Date.now() >= deadline) {
        throw new MirrorsError('LOCK_TIMEOUT', `mirror ${mirror} is locked by ${holder}`, {
          hint: 'wait for it to finish, or pass --lock-timeout 10m to wait longer',
        });
      }
      if (!warned) onWait?.(holder);
      warned = true;
      await new Promise((res) => setTimeout(res, Math.min(250, Math.max(10, deadline - Date.now()))));
    }
    this.held.add(mirror);
    await this.recordHolder(mirror).catch(() => {}); // the catalog may not exist yet
  }

  /** Writes the holder rows once the catalog exists (its first migration creates mirrors.locks). */
  async recordHolders() {
    for (const m of this.held) await this.recordHolder(m).catch(() => {});
  }

  private async recordHolder(mirror: string) {
    await this.db.query(
      `INSERT INTO mirrors.locks (mirror, host, pid, command, since) VALUES ($1::text, $2::text, $3::int, $4::text, now())
       ON CONFLICT (mirror) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, command = EXCLUDED.command, since = EXCLUDED.since`,
      [mirror, os.hostname(), process.pid, this.command],
    );
  }

  /** Drops the holder rows and ends the session, which releases every lock it holds. */
  async close() {
    await this.db
      .query('DELETE FROM mirrors.locks WHERE mirror = ANY($1::text[]) AND host = $2::text AND pid = $3::int', [
        [...this.held],
        os.hostname(),
        process.pid,
      ])
      .catch(() => {});
    this.held.clear();
    await this.db.end().catch(() => {});
  }

  private async describeHolder(mirror: string): Promise<string> {
    const exists = (await this.db.query(`SELECT to_regclass('mirrors.locks') IS NOT NULL AS ok`)).rows[0].ok;
    if (exists) {
      const r = (
        await this.db.query(
          `SELECT host, pid, command, since::text AS since FROM mirrors.locks WHERE mirror = $1::text`,
          [mirror],
        )
      ).rows[0];
      if (r) return `\`${r.command}\` (pid ${r.pid} on ${r.host}, since ${r.since})`;
    }
    const r = (
      await this.db.query(
        `SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = hashtext($2::text)::oid AND l.granted LIMIT 1`,
        [LOCK_CLASS_APPLY, mirror],
      )
    ).rows[0];
    return r
      ? `another session (backend pid ${r.pid}, ${r.application_name || 'no application name'})`
      : 'another session';
  }
}
