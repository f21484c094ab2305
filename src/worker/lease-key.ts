/**
 * Advisory-lock key of the worker lease: (LEASE_CLASS, hashtext(mirror)) on the destination. Held by the
 * worker's apply session for as long as it streams the mirror; a standby worker polls for it.
 */
export const LEASE_CLASS = 0x6d690002;
