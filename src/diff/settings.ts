/** The mirror settings the catalog records, and how desired and recorded settings differ. Pure. */
import { SETTING_KEYS } from '../config/settings.js';
import type { Mirror, MirrorSettings } from '../config/types.js';

// The keys come from the settings table (config/settings.ts); re-exported here for the diff's users.
export { SETTING_KEYS };

export function settingsOf(m: Mirror): MirrorSettings {
  const out: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) out[k] = m[k];
  return out as unknown as MirrorSettings;
}

export function changedSettings(recorded: Record<string, unknown>, desired: MirrorSettings) {
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) {
    if (JSON.stringify(recorded[k]) !== JSON.stringify(desired[k])) {
      before[k] = recorded[k] ?? null;
      after[k] = desired[k];
    }
  }
  return Object.keys(after).length ? { before, after } : null;
}
