import { LifelineError } from '../errors.ts';

/**
 * PHI masking for anything that leaves the process for human eyes: logs, the console, dead-letter
 * browsing. Paths come from `AvroContract.phiPaths` (`patient.mrn`, `lines[].mrn`, `extras{}.mrn`);
 * the value at such a path is replaced by {@link PHI_MASK} wherever it occurs.
 *
 * Values are expected as avsc decodes them with `wrapUnions: false` (Lifeline's setting): a union
 * value is the branch value itself, so a path reaches through unions without a branch name.
 */

export const PHI_MASK = '[PHI]';

/** Masks the record of a topic; see {@link createPhiRedactor}. */
export type PhiRedactor = (topic: string, value: unknown) => unknown;

/** Masks one value against paths compiled once, for callers that mask many values of one schema. */
export type PhiMask = (value: unknown) => unknown;

/** One step of the compiled paths: which field names, array elements or map values lead to PHI. */
interface MaskNode {
  masked: boolean;
  readonly fields: Map<string, MaskNode>;
  elements: MaskNode | undefined;
  mapValues: MaskNode | undefined;
}

type PathStep = { readonly kind: 'field'; readonly name: string } | { readonly kind: 'elements' } | { readonly kind: 'mapValues' };

const NO_NODES: readonly MaskNode[] = [];

/** Returns a deep copy of `value` with every value at a PHI path replaced by `"[PHI]"`; never mutates `value`. */
export function maskPhi(value: unknown, phiPaths: readonly string[]): unknown {
  return compilePhiMask(phiPaths)(value);
}

/** Compiles the paths into a tree once, so masking each record is a single walk over it. */
export function compilePhiMask(phiPaths: readonly string[]): PhiMask {
  const root = newNode();
  for (const path of phiPaths) addPath(root, path);
  const roots = [root];
  return (value) => copyMasked(value, roots, new Set());
}

/**
 * A redactor for logging records by topic. A topic missing from the map is masked whole: without
 * its contract nobody can say which fields are PHI, and in healthcare a log line must fail closed.
 * A topic mapped to an empty list has no PHI and is copied unmasked.
 */
export function createPhiRedactor(phiPathsByTopic: ReadonlyMap<string, readonly string[]>): PhiRedactor {
  const masksByTopic = new Map<string, PhiMask>();
  for (const [topic, paths] of phiPathsByTopic) masksByTopic.set(topic, compilePhiMask(paths));
  return (topic, value) => {
    const mask = masksByTopic.get(topic);
    if (mask) return mask(value);
    return value === null || value === undefined ? value : PHI_MASK;
  };
}

function newNode(): MaskNode {
  return { masked: false, fields: new Map(), elements: undefined, mapValues: undefined };
}

function addPath(root: MaskNode, path: string): void {
  let node = root;
  for (const step of parsePath(path)) {
    if (step.kind === 'field') {
      let child = node.fields.get(step.name);
      if (!child) node.fields.set(step.name, (child = newNode()));
      node = child;
    } else if (step.kind === 'elements') {
      node = node.elements ??= newNode();
    } else {
      node = node.mapValues ??= newNode();
    }
  }
  node.masked = true;
}

/** `a.b[]{}.c` → field a, field b, elements, map values, field c. */
function parsePath(path: string): PathStep[] {
  const tokens = /\[\]|\{\}|\.|[^.[\]{}]+/y;
  const steps: PathStep[] = [];
  let consumed = 0;
  let nameExpected = true; // at the start and after a dot a field name (or [] / {} at the start) must follow
  let afterDot = false;
  for (let match = tokens.exec(path); match !== null; match = tokens.exec(path)) {
    const token = match[0];
    consumed += token.length;
    if (token === '.') {
      if (nameExpected) throw invalidPath(path);
      nameExpected = true;
      afterDot = true;
    } else if (token === '[]' || token === '{}') {
      if (afterDot) throw invalidPath(path);
      steps.push({ kind: token === '[]' ? 'elements' : 'mapValues' });
      nameExpected = false;
    } else {
      if (!nameExpected) throw invalidPath(path);
      steps.push({ kind: 'field', name: token });
      nameExpected = false;
      afterDot = false;
    }
  }
  if (consumed !== path.length || steps.length === 0 || afterDot) throw invalidPath(path);
  return steps;
}

function invalidPath(path: string): LifelineError {
  return new LifelineError('LL_CONFIG_INVALID', `PHI path "${path}" is not a dotted field path like patient.mrn, lines[].mrn or extras{}.mrn`, { details: { path } });
}

/**
 * Copies `value`, masking where any of `nodes` says so. Several nodes can apply at once when a
 * union lets the same position be a record in one branch and a map in another.
 */
function copyMasked(value: unknown, nodes: readonly MaskNode[], inProgress: Set<object>): unknown {
  if (value === null || value === undefined) return value;
  if (nodes.some((node) => node.masked)) return PHI_MASK;
  if (typeof value !== 'object') return value;
  if (inProgress.has(value)) return '[Circular]'; // records have no cycles, but a log call must never hang
  if (Buffer.isBuffer(value)) return Buffer.from(value); // avro bytes and fixed
  if (ArrayBuffer.isView(value) || value instanceof Date) return structuredClone(value);

  inProgress.add(value);
  try {
    if (Array.isArray(value)) {
      const elementNodes = childNodes(nodes, (node) => node.elements);
      return value.map((element: unknown) => copyMasked(element, elementNodes, inProgress));
    }
    // Plain objects and class instances alike (avsc records are instances of generated classes):
    // own enumerable properties are the fields, and the copy is a plain object.
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) {
      const fieldNodes = childNodes(nodes, (node) => node.fields.get(key), (node) => node.mapValues);
      const masked = copyMasked(field, fieldNodes, inProgress);
      if (key === '__proto__') Object.defineProperty(copy, key, { value: masked, enumerable: true, writable: true, configurable: true });
      else copy[key] = masked;
    }
    return copy;
  } finally {
    inProgress.delete(value);
  }
}

function childNodes(nodes: readonly MaskNode[], ...pick: ReadonlyArray<(node: MaskNode) => MaskNode | undefined>): readonly MaskNode[] {
  if (nodes.length === 0) return NO_NODES;
  const children: MaskNode[] = [];
  for (const node of nodes) {
    for (const select of pick) {
      const child = select(node);
      if (child) children.push(child);
    }
  }
  return children.length === 0 ? NO_NODES : children;
}
