import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';

/**
 * One problem in a rules file, located like a compiler error (`file:line:col: ...`) so that
 * editors and CI annotate the line, as `promtool check rules` and `amtool check-config` do.
 */
export interface Problem {
  file: string;
  /** 1-based; absent for a problem with no place in a file (an unreadable directory). */
  line?: number;
  /** 1-based. */
  col?: number;
  /** `rule "name"`, `target "name"` or `YAML`; absent for a problem of the file as a whole. */
  subject?: string;
  /** The field inside the subject, e.g. `params.verify_timeout`. */
  path?: string;
  message: string;
}

/** `rules/x.yml:12:22: rule "reset": params.verify_timeout: bad duration "soon"` */
export function formatProblem(p: Problem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.col ?? 1}`;
  return `${where}: ${[p.subject, p.path, p.message].filter(Boolean).join(': ')}`;
}

/** File, then line, then column: the order an editor's problem list uses. */
export function sortProblems(list: Problem[]): Problem[] {
  return [...list].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0) || (a.message < b.message ? -1 : 1)));
}

/** `a.b[0].c`; the empty path is the subject itself. */
export function fieldPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/** Where the nodes of one parsed rules file are, by their path in the document. */
export class SourcePositions {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * The position of the node at `path`, or of the nearest ancestor that exists (a missing
   * field is reported on the object that lacks it). `key`: the key of the last step instead of
   * its value (an unknown key is reported on the key itself).
   */
  at(path: readonly (string | number)[], opts: { key?: boolean } = {}): { line: number; col: number } {
    let node: Node | null | undefined = this.doc.contents;
    for (let i = 0; i < path.length && node; i++) {
      if (isAlias(node)) node = node.resolve(this.doc) ?? node;
      const seg = path[i]!;
      let next: Node | null | undefined;
      if (isMap(node)) {
        const pair: Pair<unknown, unknown> | undefined = node.items.find((p) => keyText(p.key) === String(seg));
        if (pair) next = opts.key && i === path.length - 1 ? (pair.key as Node) : ((pair.value as Node | null) ?? (pair.key as Node));
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg] as Node | undefined;
      }
      if (!next) break;
      node = next;
    }
    return this.offset(node?.range?.[0] ?? 0);
  }

  /** 1-based line and column of a character offset. */
  offset(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }

  problem(path: readonly (string | number)[], p: { subject?: string; field?: readonly (string | number)[]; message: string; key?: boolean }): Problem {
    const field = p.field && p.field.length > 0 ? fieldPath(p.field) : undefined;
    return { file: this.file, ...this.at(path, { key: p.key }), subject: p.subject, path: field, message: p.message };
  }
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}
