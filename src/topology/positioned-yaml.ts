import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { TopologyProblem } from './topology-problem.ts';

/** One step into a YAML value: a mapping key or a sequence index. */
export type PathSegment = string | number;

/** `processors.counter.inputs[1]`: keys joined by dots, sequence indexes in brackets. */
export function formatPath(path: readonly PathSegment[]): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text ? `.${segment}` : segment;
  return text;
}

/**
 * Turns a JSON pointer from a schema error (`/processors/counter/inputs/1`) into path segments,
 * reading `value` to tell sequence indexes from mapping keys that happen to be digits.
 */
export function pathFromPointer(pointer: string, value: unknown, prefix: readonly PathSegment[] = []): PathSegment[] {
  const path: PathSegment[] = [...prefix];
  let current = value;
  for (const escaped of pointer.split('/').slice(1)) {
    const key = escaped.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      path.push(Number(key));
      current = current[Number(key)];
    } else {
      path.push(key);
      current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[key] : undefined;
    }
  }
  return path;
}

/** Where a problem points: at a value, or (for an unknown key) at the key itself. */
export type ProblemTarget = 'value' | 'key';

/** A plain value may not nest deeper than this; it stops an alias that contains itself. */
const MAX_DEPTH = 64;

/**
 * A parsed YAML file that remembers where every node came from, so a problem found in the plain
 * value can point back at a file, line and column.
 */
export class PositionedYaml {
  private constructor(
    readonly file: string,
    private readonly document: Document.Parsed,
    private readonly lineCounter: LineCounter,
  ) {}

  /** Parses `text`; a file with syntax errors yields those errors and no document. */
  static parse(text: string, file: string): { yaml?: PositionedYaml; problems: TopologyProblem[] } {
    const lineCounter = new LineCounter();
    // prettyErrors off: the message stays one line; the position is added the same way as any problem's.
    const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (document.errors.length > 0) {
      const problems = document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { file, line, column: col, path: '', message: `invalid YAML: ${error.message}` };
      });
      return { problems };
    }
    return { yaml: new PositionedYaml(file, document, lineCounter), problems: [] };
  }

  problem(path: readonly PathSegment[], message: string, target: ProblemTarget = 'value'): TopologyProblem {
    const { line, column } = this.position(path, target);
    return { file: this.file, line, column, path: formatPath(path), message };
  }

  /** `topology.yaml:12:3` */
  location(path: readonly PathSegment[], target: ProblemTarget = 'value'): string {
    const { line, column } = this.position(path, target);
    return `${this.file}:${line}:${column}`;
  }

  /**
   * The position of the node at `path`. Where the path leads to nothing (a missing key), the
   * deepest node that exists: the mapping the key is missing from.
   */
  position(path: readonly PathSegment[], target: ProblemTarget = 'value'): { line: number; column: number } {
    let node: Node | null | undefined = this.resolve(this.document.contents);
    let found: Node | undefined = node ?? undefined;
    for (let index = 0; index < path.length && node; index += 1) {
      const segment = path[index] as PathSegment;
      const last = index === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
        if (!pair) break;
        const keyNode = pair.key as Node;
        const valueNode = this.resolve(pair.value as Node | null);
        // An empty value (`ttl:`) has no node of its own worth pointing at; its key is where to look.
        node = last && target === 'key' ? keyNode : (valueNode && !isEmptyScalar(valueNode) ? valueNode : keyNode);
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = this.resolve(node.items[segment] as Node | null | undefined);
        if (!item) break;
        node = item;
      } else {
        break;
      }
      found = node;
    }
    return this.offsetPosition(found?.range?.[0] ?? 0);
  }

  /**
   * The document as plain data. Every scalar passes through `mapScalar` (which resolves `${…}`
   * references in strings and reports what it cannot resolve), so the value holds no unresolved text.
   */
  toPlainValue(mapScalar: (value: unknown, path: readonly PathSegment[]) => unknown, problems: TopologyProblem[]): unknown {
    const visit = (node: Node | null | undefined, path: PathSegment[]): unknown => {
      const resolved = this.resolve(node);
      if (!resolved) return null;
      if (path.length > MAX_DEPTH) {
        problems.push(this.problem(path, 'nests too deeply (does an alias refer to itself?)'));
        return null;
      }
      if (isMap(resolved)) {
        const result: Record<string, unknown> = {};
        for (const pair of resolved.items) {
          if (!isScalar(pair.key) || (pair.key.value !== null && typeof pair.key.value === 'object')) {
            problems.push(this.problem(path, 'mapping keys must be plain names'));
            continue;
          }
          const key = String(pair.key.value);
          result[key] = visit(pair.value as Node | null, [...path, key]);
        }
        return result;
      }
      if (isSeq(resolved)) return resolved.items.map((item, index) => visit(item as Node | null, [...path, index]));
      if (isScalar(resolved)) return mapScalar(resolved.value, path);
      return null;
    };
    return visit(this.document.contents, []);
  }

  private resolve(node: Node | null | undefined): Node | undefined {
    let current = node ?? undefined;
    // An alias may point at another alias; yaml rejects cycles between anchors when parsing.
    for (let hops = 0; current && isAlias(current) && hops < MAX_DEPTH; hops += 1) current = current.resolve(this.document);
    return current && !isAlias(current) ? current : undefined;
  }

  private offsetPosition(offset: number): { line: number; column: number } {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }
}

function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.value === null && (node.range?.[0] ?? 0) === (node.range?.[1] ?? 0);
}
