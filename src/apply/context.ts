/**
 * What an apply run shares between actions: one admin connection per peer, the exported snapshots of
 * slots created in this run (kept open until the copy that needs them is done), the journal.
 */
import os from 'node:os';
import type pg from 'pg';
import type { Config, Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { MirrorsError } from '../errors.js';
import type { Action, Plan } from '../plan/types.js';
import { journal } from '../catalog/sql.js';
import type { ExportedSnapshot } from './slot.js';
import type { Reporter } from './events.js';

export class ApplyContext {
  private clients = new Map<string, Promise<pg.Client>>();
  readonly exported = new Map<string, ExportedSnapshot>();
  readonly host = os.hostname();
  readonly pid = process.pid;

  constructor(
    readonly config: Config,
    readonly plan: Plan,
    readonly report: Reporter,
    readonly command: string,
    /** Aborted: long actions (the snapshot) stop and roll back what is in flight. */
    readonly signal?: AbortSignal,
  ) {}

  peer(name: string): Peer {
    const p = this.config.peers[name];
    if (!p)
      throw new MirrorsError('APPLY_FAILED', `peer ${name} is not declared in the configuration`, {
        hint: 'keep peers declared while a plan uses them',
      });
    return p;
  }

  db(peer: string): Promise<pg.Client> {
    let c = this.clients.get(peer);
    if (!c) {
      // Its commits on a source must not wait for a synchronous standby that may be a mirror it is changing.
      c = connectPeer(this.peer(peer), { applicationName: 'mirrors apply', options: '-c synchronous_commit=local' });
      this.clients.set(peer, c);
      c.catch(() => this.clients.delete(peer));
    }
    return c;
  }

  private planned(mirror: string) {
    const m = this.plan.mirrors.find((x) => x.name === mirror);
    if (!m) throw new Error(`internal: mirror ${mirror} is not covered by the plan`);
    return m;
  }

  /** The destination peer holding a mirror's catalog rows, as the plan says. */
  destinationOf(mirror: string): string {
    return this.planned(mirror).destination;
  }

  sourceOf(mirror: string): string {
    return this.planned(mirror).source;
  }

  /** The mirror of an action that belongs to one (the schema guarantees it for mirror-scoped kinds). */
  mirrorOf(action: Action): string {
    if (!action.mirror) throw new Error(`internal: action ${action.id} names no mirror`);
    return action.mirror;
  }

  async journal(action: Action, outcome: 'done' | 'failed', error?: Record<string, unknown>) {
    const peer = action.mirror ? this.destinationOf(action.mirror) : action.peer;
    const db = await this.db(peer);
    const ok = (await db.query(`SELECT to_regclass('mirrors.journal') IS NOT NULL AS ok`)).rows[0].ok;
    if (!ok) return; // a failed catalog creation has nowhere to be written
    await journal(db, {
      mirror: action.mirror ?? null,
      actionId: action.id,
      address: action.address,
      kind: action.kind,
      op: action.op,
      outcome,
      error,
      host: this.host,
      pid: this.pid,
      command: this.command,
    });
  }

  async close() {
    for (const s of this.exported.values()) await s.close();
    this.exported.clear();
    for (const c of this.clients.values()) await c.then((x) => x.end()).catch(() => {});
    this.clients.clear();
  }
}
