/**
 * The per-mirror apply lock: a session advisory lock on the destination, plus a row in mirrors.locks
 * saying who holds it (host, pid, command, since) so a waiting apply can name the holder.
 * The lock lives as long as its connection: a killed apply releases it with its session.
 */
import os from 'node:os';
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { MirrorsError } from '../errors.js';

/** Advisory-lock key space of the tool: (class, hashtext(name)). Class 1 = apply, 2 = worker lease. */
export const LOCK_CLASS_APPLY = 0x6d690001;

export interface MirrorLock {
  mirror: string;
  /** Records the holder row once the catalog exists. */
  recordHolder(): Promise<void>;
  release(): Promise<void>;
}

export async function acquireMirrorLock(
  peer: Peer,
  mirror: string,
  command: string,
  timeoutMs: number,
  onWait?: (holder: string) => void,
): Promise<MirrorLock> {
  const db = await connectPeer(peer, { applicationName: `mirrors lock ${mirror}` });
  const deadline = Date.now() + timeoutMs;
  let warned = false;
  try {
    for (;;) {
      const ok = (
        await db.query('SELECT pg_try_advisory_lock($1::int, hashtext($2::text)) AS ok', [LOCK_CLASS_APPLY, mirror])
      ).rows[0].ok;
      if (ok) break;
      const holder = await describeHolder(db, mirror);
      if (Date.now() >= deadline) {
        throw new MirrorsError('LOCK_TIMEOUT', `mirror ${mirror} is locked by ${holder}`, {
          hint: 'wait for it to finish, or pass --lock-timeout 10m to wait longer',
        });
      }
      if (!warned) onWait?.(holder);
      warned = true;
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, deadline - Date.now()))));
    }
  } catch (err) {
    await db.end().catch(() => {});
    throw err;
  }
  const lock: MirrorLock = {
    mirror,
    recordHolder: async () => {
      await db.query(
        `INSERT INTO mirrors.locks (mirror, host, pid, command, since) VALUES ($1::text, $2::text, $3::int, $4::text, now())
         ON CONFLICT (mirror) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, command = EXCLUDED.command, since = EXCLUDED.since`,
        [mirror, os.hostname(), process.pid, command],
      );
    },
    release: async () => {
      await db
        .query('DELETE FROM mirrors.locks WHERE mirror = $1::text AND host = $2::text AND pid = $3::int', [
          mirror,
          os.hostname(),
          process.pid,
        ])
        .catch(() => {});
      await db.end().catch(() => {});
    },
  };
  await lock.recordHolder().catch(() => {}); // the catalog may not exist yet
  return lock;
}

async function describeHolder(db: pg.Client, mirror: string): Promise<string> {
  const exists = (await db.query(`SELECT to_regclass('mirrors.locks') IS NOT NULL AS ok`)).rows[0].ok;
  if (exists) {
    const r = (
      await db.query(`SELECT host, pid, command, since::text AS since FROM mirrors.locks WHERE mirror = $1::text`, [
        mirror,
      ])
    ).rows[0];
    if (r) return `\`${r.command}\` (pid ${r.pid} on ${r.host}, since ${r.since})`;
  }
  const r = (
    await db.query(
      `SELECT a.pid, a.application_name, a.client_addr::text AS addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = hashtext($2::text)::oid AND l.granted LIMIT 1`,
      [LOCK_CLASS_APPLY, mirror],
    )
  ).rows[0];
  return r
    ? `another session (backend pid ${r.pid}, ${r.application_name || 'no application name'})`
    : 'another session';
}
