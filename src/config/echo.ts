/**
 * How user text may appear in a problem message: short, on one line, and never whole when it is long.
 * A hostile or mistaken file can hold a value of megabytes; echoing it would make the message unreadable
 * and copy it into logs and CI output. Pure. (Secrets are never passed here: callers drop them first.)
 */

/** Longest piece of user text a message quotes; longer text is cut and ends with `…`. */
export const ECHO_MAX_CHARS = 60;

/** `text` cut to `max` characters with an ellipsis, line breaks and other controls made visible. */
export function clip(text: string, max = ECHO_MAX_CHARS): string {
  // Cut first so the work below is bounded whatever the input's size.
  const cut = text.length > max ? text.slice(0, max - 1) : text;
  const oneLine = cut.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : '?'));
  return text.length > max ? oneLine + '…' : oneLine;
}

/** `` `text` ``, clipped. */
export function quote(text: string): string {
  return '`' + clip(text) + '`';
}

/** `a, b, c` for at most `max` names, then `and N more`, so a list of thousands stays one short line. */
export function listNames(names: readonly string[], max = 10): string {
  const shown = names
    .slice(0, max)
    .map((n) => clip(n))
    .join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
