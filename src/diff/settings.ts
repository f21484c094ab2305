/** The mirror settings the catalog records, and how desired and recorded settings differ. Pure. */
import { SETTING_KEYS, builtinSettings } from '../config/settings.js';
import type { Mirror, MirrorSettings } from '../config/types.js';

// The keys come from the settings table (config/settings.ts); re-exported here for the diff's users.
export { SETTING_KEYS };

export function settingsOf(m: Mirror): MirrorSettings {
  const out: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) out[k] = m[k];
  return out as unknown as MirrorSettings;
}

/**
 * The settings that differ, before and after. A setting the catalog has no value for (it was recorded by a
 * version that did not have it yet) counts as its built-in default, which is what that version did.
 */
export function changedSettings(recorded: Record<string, unknown>, desired: MirrorSettings) {
  const defaults = builtinSettings(desired.mode) as unknown as Record<string, unknown>;
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) {
    const was = k in recorded ? recorded[k] : defaults[k];
    if (JSON.stringify(was) !== JSON.stringify(desired[k])) {
      before[k] = was ?? null;
      after[k] = desired[k];
    }
  }
  return Object.keys(after).length ? { before, after } : null;
}
