/**
 * mirrors.yaml text to its one yaml Document, or the problems that make the text unusable: a file too
 * large, YAML syntax errors, a second document, a scalar too long to be a real value, a key given twice.
 * Those come alone (the caller reports nothing else), since anything found after them would mostly be
 * their consequences.
 * Bounded in time whatever the text holds: yaml's own duplicate-key check compares each key with every
 * earlier one, so this module does it itself in one pass; yaml's double-quoted scalars cost seconds per
 * megabyte, so a huge scalar is refused before yaml composes it; and yaml parses about a megabyte a second
 * on a busy machine, so a larger file is refused before it is parsed at all.
 */
import { Composer, LineCounter, Parser, type CST, type Document } from 'yaml';
import { clip } from './echo.js';
import { displayPath, duplicateKeys, YamlLocator } from './positions.js';
import type { ConfigProblem } from './problems.js';

/** Largest file accepted, in UTF-8 bytes: 1 MiB, as a Kubernetes ConfigMap; tens of thousands of mirrors' tables. */
export const MAX_FILE_BYTES = 1_048_576;

/** Longest scalar (key or value) accepted: far above any url, name or password, far below harm. */
export const MAX_SCALAR_CHARS = 65_536;

export interface ParsedYaml {
  doc: Document;
  locator: YamlLocator;
  /** Problems that stop validation here; empty when the document can be checked further. */
  problems: ConfigProblem[];
  /** yaml's warnings (such as an unknown tag), for the caller to report with its own problems. */
  warnings: ConfigProblem[];
}

export function parseYaml(text: string, file: string): ParsedYaml {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_FILE_BYTES) {
    const doc = [...new Composer({ logLevel: 'silent' }).compose([], true, 0)][0];
    const message = `the file is ${bytes} bytes: mirrors.yaml may be at most ${MAX_FILE_BYTES} bytes (1 MiB)`;
    return {
      doc,
      locator: new YamlLocator(doc, new LineCounter()),
      problems: [{ file, line: 1, col: 1, path: '', message, hint: 'check that this is the right file' }],
      warnings: [],
    };
  }
  const lineCounter = new LineCounter();
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)];
  // Silent: yaml would otherwise print warnings itself, and only the CLI prints. They are reported below.
  const composer = new Composer({ prettyErrors: false, logLevel: 'silent', uniqueKeys: false });
  const long = oversizedScalars(tokens);
  // Composing is what is slow on a huge scalar, so compose an empty stream instead: positions still work.
  const docs = [...composer.compose(long.length > 0 ? [] : tokens, true, text.length)];
  const doc = docs[0];
  const locator = new YamlLocator(doc, lineCounter);
  const at = (offset: number, path: string, message: string, hint?: string): ConfigProblem => {
    const { line, col } = locator.offsetPos(offset);
    return { file, line, col, path, message, ...(hint ? { hint } : {}) };
  };

  if (long.length > 0) {
    const problems = long.map((t) =>
      at(
        t.offset,
        '',
        `a string of ${t.source.length} characters: mirrors.yaml takes strings of at most ${MAX_SCALAR_CHARS}`,
        'a value this long is not a setting; check what was pasted here',
      ),
    );
    return { doc, locator, problems, warnings: [] };
  }
  const problems = doc.errors.map((e) => at(e.pos[0], '', yamlMessage(e.message), yamlHint(e.code)));
  if (docs.length > 1) {
    problems.push(
      at(
        docs[1].range[0],
        '',
        'YAML: the file holds more than one document; mirrors.yaml must be a single document',
        'remove the `---` line that starts a second document (and merge what follows into the first)',
      ),
    );
  }
  if (problems.length === 0) {
    for (const { pair, path } of duplicateKeys(doc)) {
      const key = pair.key as { range?: [number, number, number] } | null;
      problems.push(
        at(
          key?.range?.[0] ?? 0,
          displayPath(path),
          `YAML: the key \`${clip(String(path[path.length - 1]))}\` is given twice in this map`,
          'each key may appear once in a map',
        ),
      );
    }
  }
  const warnings = doc.warnings.map((w) => at(w.pos[0], '', yamlMessage(w.message)));
  return { doc, locator, problems, warnings };
}

type ScalarToken = CST.FlowScalar | CST.BlockScalar;

/** Scalar tokens longer than MAX_SCALAR_CHARS, found without composing (an explicit stack: depth is up to the file). */
function oversizedScalars(tokens: CST.Token[]): ScalarToken[] {
  const out: ScalarToken[] = [];
  const stack: (CST.Token | null | undefined)[] = [...tokens];
  while (stack.length > 0) {
    const t = stack.pop();
    if (!t) continue;
    switch (t.type) {
      case 'document':
        stack.push(t.value);
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection':
        for (const item of t.items) stack.push('key' in item ? item.key : undefined, item.value);
        break;
      case 'scalar':
      case 'single-quoted-scalar':
      case 'double-quoted-scalar':
      case 'block-scalar':
        if (t.source.length > MAX_SCALAR_CHARS) out.push(t);
        break;
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

// yaml's messages end with a position we report separately, and may quote the file (a tag, say): clip them.
function yamlMessage(message: string): string {
  return 'YAML: ' + clip(message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim(), 200);
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and the `:` after each key';
    default:
      return undefined;
  }
}
