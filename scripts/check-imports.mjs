// Checks the direction of dependencies (DESIGN.md, "Layout and the direction of dependencies"):
// no import cycle anywhere (type-only imports count: they tie the files' meaning together), and no
// arrow from the core (src/runtime, src/topology, src/kafka, src/component) into connectors/,
// processors/ or dev/, nor from any production code into tests/, nor from src/console, src/ops or
// src/observe into src/cli. Exits 1 with every finding listed.
//
// It reads static `import … from`, `export … from`, `import '…'` and dynamic `import('…')` of
// relative paths. A dynamic import is allowed to point down into dev/ from src/cli (that is how the
// CLI loads dev commands only when they run) but still counts for cycles.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SCANNED = ['src', 'connectors', 'processors', 'dev', 'bench', 'tests', 'scripts', 'testing'];
const EXTENSIONS = ['.ts', '.mts', '.mjs', '.js'];

/** Folders a layer must never import from (prefix match on repo-relative paths). */
const FORBIDDEN = [
  { from: ['src/component/'], to: ['src/', 'connectors/', 'processors/', 'dev/', 'tests/', 'bench/'], except: ['src/component/', 'src/errors.ts'] },
  { from: ['src/runtime/', 'src/topology/', 'src/kafka/'], to: ['connectors/', 'processors/', 'dev/', 'tests/', 'bench/', 'src/cli/', 'src/console/'] },
  { from: ['src/', 'connectors/', 'processors/', 'dev/'], to: ['tests/', 'bench/'] },
  { from: ['processors/'], to: ['connectors/', 'dev/', 'src/runtime/', 'src/kafka/'] },
  { from: ['connectors/'], to: ['processors/', 'dev/', 'src/runtime/'] },
  { from: ['bench/'], to: ['tests/'] },
  // The CLI is a composition root like the console: the console acts through src/ops, never through the CLI's commands.
  { from: ['src/console/', 'src/ops/', 'src/observe/'], to: ['src/cli/'] },
];
/** src/cli may reach dev/ only through a dynamic import (loaded when a dev command runs). */
const DYNAMIC_ONLY = [{ from: 'src/cli/', to: 'dev/' }];

function listFiles(dir) {
  let entries;
  try {
    entries = readdirSync(join(ROOT, dir));
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    if (entry === 'node_modules' || entry.startsWith('.')) return [];
    const path = `${dir}/${entry}`;
    if (statSync(join(ROOT, path)).isDirectory()) return listFiles(path);
    return EXTENSIONS.some((ext) => entry.endsWith(ext)) && !entry.endsWith('.d.ts') ? [path] : [];
  });
}

/** Strips comments so an example in a doc comment is not read as an import. */
function stripComments(source) {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const STATIC = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

export function importGraph() {
  const files = SCANNED.flatMap(listFiles);
  const known = new Set(files);
  /** @type {Map<string, {to: string, dynamic: boolean}[]>} */
  const graph = new Map();
  for (const file of files) {
    const source = stripComments(readFileSync(join(ROOT, file), 'utf8'));
    const edges = [];
    for (const [pattern, dynamic] of [[STATIC, false], [DYNAMIC, true]]) {
      for (const match of source.matchAll(pattern)) {
        const target = normalize(join(dirname(file), match[1])).split('\\').join('/');
        if (known.has(target)) edges.push({ to: target, dynamic });
        else if (!target.startsWith('node_modules')) {
          const withExt = EXTENSIONS.map((ext) => target + ext).find((candidate) => known.has(candidate));
          if (withExt) edges.push({ to: withExt, dynamic });
        }
      }
    }
    graph.set(file, edges);
  }
  return graph;
}

export function findCycles(graph) {
  // Tarjan's strongly connected components: every component of more than one file is a cycle.
  let index = 0;
  const indexOf = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cycles = [];
  const visit = (node) => {
    indexOf.set(node, index);
    low.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const { to } of graph.get(node) ?? []) {
      if (!indexOf.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node), low.get(to)));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node), indexOf.get(to)));
    }
    if (low.get(node) === indexOf.get(node)) {
      const members = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        members.push(member);
      } while (member !== node);
      const selfLoop = (graph.get(node) ?? []).some(({ to }) => to === node);
      if (members.length > 1 || selfLoop) cycles.push(members.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indexOf.has(node)) visit(node);
  return cycles;
}

export function findForbiddenArrows(graph) {
  const problems = [];
  for (const [file, edges] of graph) {
    for (const { to, dynamic } of edges) {
      for (const rule of FORBIDDEN) {
        if (!rule.from.some((prefix) => file.startsWith(prefix))) continue;
        if (rule.except?.some((prefix) => to.startsWith(prefix))) continue;
        if (rule.to.some((prefix) => to.startsWith(prefix))) problems.push(`${file} imports ${to}`);
      }
      for (const rule of DYNAMIC_ONLY) {
        if (file.startsWith(rule.from) && to.startsWith(rule.to) && !dynamic) problems.push(`${file} imports ${to} statically (load it with import() when its command runs)`);
      }
    }
  }
  return [...new Set(problems)].sort();
}

/** Files that load with `lifeline` itself, before any command runs: they must not reach dev/. */
const ENTRY_POINTS = ['src/cli/main.ts'];

/** dev/ files the CLI loads statically (following static imports only, from the entry points). */
export function devLoadedAtStartup(graph, entries = ENTRY_POINTS) {
  const seen = new Set();
  const queue = entries.filter((entry) => graph.has(entry));
  while (queue.length > 0) {
    const file = queue.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { to, dynamic } of graph.get(file) ?? []) if (!dynamic && !seen.has(to)) queue.push(to);
  }
  return [...seen].filter((file) => file.startsWith('dev/')).sort();
}

export function checkImports(graph = importGraph()) {
  return {
    cycles: findCycles(graph),
    arrows: [
      ...findForbiddenArrows(graph),
      ...devLoadedAtStartup(graph).map((file) => `src/cli/main.ts loads ${file} at startup (import it with import() in the command that needs it)`),
    ],
    files: graph.size,
    imports: [...graph.values()].reduce((sum, list) => sum + list.length, 0),
  };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { cycles, arrows, files, imports } = checkImports();
  for (const cycle of cycles) console.error(`import cycle: ${cycle.join(' <-> ')}`);
  for (const arrow of arrows) console.error(`wrong direction: ${arrow}`);
  if (cycles.length + arrows.length > 0) {
    console.error(`check-imports: ${cycles.length} cycle(s), ${arrows.length} arrow(s) against the layers (${files} files, ${imports} imports)`);
    process.exit(1);
  }
  console.log(`check-imports: ${files} files, ${imports} imports, no cycle, every arrow points down`);
}
