/** Addresses of the objects a plan acts on, e.g. `mirror.prod_to_staging.table.public.users`. Pure. */
import { displayIdent, displayQualified, type QualifiedName } from '../config/names.js';

export const peerAddress = (peer: string) => `peer.${peer}`;
export const catalogAddress = (peer: string) => `peer.${peer}.catalog`;
export const schemaAddress = (peer: string, schema: string) => `peer.${peer}.schema.${displayIdent(schema)}`;
export const typeAddress = (peer: string, t: QualifiedName) => `peer.${peer}.type.${displayQualified(t)}`;
export const syncStandbysAddress = (peer: string) => `peer.${peer}.synchronous_standby_names`;
export const extensionAddress = (peer: string, ext: string) => `peer.${peer}.extension.${ext}`;
export const mirrorAddress = (mirror: string) => `mirror.${mirror}`;
export const promotionAddress = (mirror: string) => `mirror.${mirror}.promotion`;
export const publicationAddress = (mirror: string) => `mirror.${mirror}.publication`;
export const slotAddress = (mirror: string) => `mirror.${mirror}.slot`;
export const snapshotAddress = (mirror: string) => `mirror.${mirror}.snapshot`;
export const streamAddress = (mirror: string) => `mirror.${mirror}.stream`;
export const tableAddress = (mirror: string, dest: QualifiedName) => `mirror.${mirror}.table.${displayQualified(dest)}`;
export const indexesAddress = (mirror: string, dest: QualifiedName) => `${tableAddress(mirror, dest)}.indexes`;
export const foreignKeysAddress = (mirror: string, dest: QualifiedName) => `${tableAddress(mirror, dest)}.foreign_keys`;

/** Names of the objects the tool owns for a mirror (DESIGN.md: Objects the tool owns). */
export const publicationName = (mirror: string) => `mirrors_${mirror}`;
export const slotName = (mirror: string) => `mirrors_${mirror}`;
