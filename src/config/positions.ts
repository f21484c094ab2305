/**
 * Where things are in the YAML text: config paths to 1-based line:col, using the yaml CST ranges and a
 * LineCounter, and the walk over string values that interpolation needs. Knows nothing about the schema.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node,
  type Pair,
  type Scalar,
  type YAMLMap,
} from 'yaml';
import { clip } from './echo.js';

export type Segment = string | number;

export interface LineCol {
  line: number;
  col: number;
}

/** `mirrors.prod_to_staging.tables[1].exclude_columns`; keys that are not plain words are quoted. */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : '.' + seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * An exact identity for a path and for each of its ancestors, cheaper than formatPath: `keys[i]` stands for
 * `path.slice(0, i)`. (A number and a string segment differ: `tables[0]` is not `tables["0"]`.)
 */
export function pathKeys(path: readonly Segment[]): string[] {
  const keys = [''];
  let key = '';
  for (const seg of path) {
    key += typeof seg === 'number' ? `\u0001${seg}` : `\u0002${seg}`;
    keys.push(key);
  }
  return keys;
}

/** formatPath for people: long keys clipped, so a megabyte key does not make a megabyte path. */
export function displayPath(path: readonly Segment[]): string {
  return formatPath(path.map((s) => (typeof s === 'string' ? clip(s) : s)));
}

/** The string a map key becomes in the JS value (yaml stringifies non-string keys the same way). */
export function keyString(pair: Pair): string {
  const k = pair.key;
  if (k === null || k === undefined) return '';
  if (isScalar(k)) return k.value === null ? '' : String(k.value);
  return String(k);
}

export class YamlLocator {
  /** Each map's pairs by key, built on first use: a file with N problems in one map costs N, not N². */
  private readonly pairsByKey = new WeakMap<YAMLMap, Map<string, Pair>>();

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * The position of the node at `path`: its key when `at` is 'key' and the path ends at a map entry,
   * else its value. A path that does not exist resolves to its nearest existing ancestor, which is
   * where a missing key belongs.
   */
  locate(path: readonly Segment[], at: 'key' | 'value' = 'value'): LineCol {
    let node: unknown = this.doc.contents;
    let best: Node | undefined = isNodeWithRange(node) ? node : undefined;
    for (let i = 0; i < path.length; i++) {
      if (isAlias(node)) node = node.resolve(this.doc);
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = this.pairOf(node, String(seg));
        if (!pair) break;
        if (last && at === 'key' && isNodeWithRange(pair.key)) return this.pos(pair.key);
        // `key:` with nothing after it has no useful value position; the key is where to look.
        if (isNodeWithRange(pair.key)) best = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else break;
      if (isNodeWithRange(node) && !isEmptyScalar(node)) best = node;
      else if (!isNodeWithRange(node)) break;
    }
    return best ? this.pos(best) : { line: 1, col: 1 };
  }

  offsetPos(offset: number): LineCol {
    const { line, col } = this.lines.linePos(offset);
    return { line: Math.max(line, 1), col: Math.max(col, 1) };
  }

  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let byKey = this.pairsByKey.get(map);
    if (!byKey) {
      byKey = new Map();
      // The first pair with the key, as the JS value keeps (a duplicate key is refused before this runs).
      for (const p of map.items as Pair[]) if (!byKey.has(keyString(p))) byKey.set(keyString(p), p);
      this.pairsByKey.set(map, byKey);
    }
    return byKey.get(key);
  }

  private pos(node: Node): LineCol {
    return this.offsetPos(node.range![0]);
  }
}

function isNodeWithRange(n: unknown): n is Node {
  return (isScalar(n) || isMap(n) || isSeq(n) || isAlias(n)) && Array.isArray((n as Node).range);
}

function isEmptyScalar(n: Node): boolean {
  return isScalar(n) && n.value === null && n.range![0] === n.range![1];
}

/**
 * Calls `fn` for every string value (never a key) with its path. Aliases are not followed: the anchored
 * node is visited where it is defined, and changing it changes every alias.
 */
export function walkStringScalars(doc: Document, fn: (scalar: Scalar<string>, path: Segment[]) => void): void {
  const walk = (node: unknown, path: Segment[]): void => {
    if (isScalar(node)) {
      if (typeof node.value === 'string') fn(node as Scalar<string>, path);
    } else if (isMap(node)) {
      for (const pair of node.items) walk(pair.value, [...path, keyString(pair)]);
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item, [...path, i]);
    }
  };
  walk(doc.contents, []);
}

/**
 * Every key that repeats an earlier key of its map, with its path. Keys compare as the strings they become
 * in the JS value (so `1:` and `"1":` clash: one would silently replace the other). One set per map keeps
 * this linear; yaml's own check compares each key with every earlier one.
 */
export function duplicateKeys(doc: Document): { pair: Pair; path: Segment[] }[] {
  const out: { pair: Pair; path: Segment[] }[] = [];
  // An explicit stack rather than recursion: nesting depth is up to the file.
  const stack: { node: unknown; path: Segment[] }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = keyString(pair);
        if (seen.has(key)) out.push({ pair, path: [...path, key] });
        else seen.add(key);
        if (isMap(pair.value) || isSeq(pair.value)) stack.push({ node: pair.value, path: [...path, key] });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (isMap(item) || isSeq(item)) stack.push({ node: item, path: [...path, i] });
      });
    }
  }
  return out;
}
