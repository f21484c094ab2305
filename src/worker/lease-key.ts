/**
 * Advisory-lock key of the worker lease: (LEASE_CLASS, hashtext(mirror)) on the destination. Held by the
 * worker's apply session for as long as it streams the mirror; a standby worker polls for it.
 */
export const LEASE_CLASS = 0x6d690002;

/** SQL: whether some session of this database holds the lease of the mirror named by `nameExpr` (an SQL expression). */
export const leaseHeldSql = (nameExpr: string) => `EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid = ${LEASE_CLASS}::oid AND l.objid = hashtext(${nameExpr})::oid)`;
