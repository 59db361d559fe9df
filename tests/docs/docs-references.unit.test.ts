import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { formatTopologyProblem, topologyProblemsOf } from '../../src/topology/topology-problem.ts';
import { repositoryTopologySecrets } from '../../testing/golden-path-fixture.ts';

// README.md and docs/*.md name topics, commands and files; a newcomer copies them. This keeps
// them true, as tests/src/errors test keeps docs/errors.md and the error codes in step: every topic
// named is declared in topology.yaml (or written by Lifeline itself), every `lifeline …` command
// exists with every `--option` written after it (docs/cli.md, generated from the commands and kept
// current by its own test), every `npm run` script is in package.json, and every repository path exists.

const DOCS = ['README.md', ...readdirSync('docs').filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
const TOPIC = /(?<![\w.<>{}*/-])((?:[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*|ops\.[a-z][a-z0-9_-]*)\.v[0-9]+)(?![\w.<>{}*-])/g;
const PATH = /^(?:src|connectors|processors|schemas|dev|docs|tests|testing|bench|scripts|bin|\.ci)\/[^\s]*$|^(?:topology\.yaml|package\.json|docker-compose\.yml|tsconfig\.json|README\.md)$/;

/** Inline code spans and fenced blocks: where commands, topics and paths are written to be copied. */
function codeOf(text: string): string[] {
  const fenced = [...text.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((match) => match[1] as string);
  const prose = text.replace(/```[^\n]*\n[\s\S]*?```/g, '');
  const inline = [...prose.matchAll(/`([^`\n]+)`/g)].map((match) => match[1] as string);
  return [...fenced, ...inline];
}

function links(text: string): string[] {
  return [...text.replace(/```[\s\S]*?```/g, '').matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] as string);
}

const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []));
/** The string literals of src/: a code span that is one of them quotes a message (a log line), not a command. */
const SOURCE_STRINGS = new Set(walk('src').flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/'([^'\n\\]{3,})'/g)].map((match) => match[1] as string)));

function knownTopics(): Set<string> {
  const topology = parse(readFileSync('topology.yaml', 'utf8')) as { topics?: Record<string, unknown>; processors?: Record<string, unknown>; connectors?: Record<string, unknown> };
  const known = new Set(Object.keys(topology.topics ?? {}));
  for (const label of [...Object.keys(topology.processors ?? {}), ...Object.keys(topology.connectors ?? {})]) known.add(`ops.dlq.${label}.v1`);
  // Topics Lifeline writes itself (audit, replay plans, …) are named in its sources.
  for (const text of SOURCE_STRINGS) if (/^(?:ops|_lifeline)\.[a-z0-9_.-]+$/.test(text)) known.add(text);
  return known;
}

function knownCommands(): Set<string> {
  return new Set([...readFileSync('docs/cli.md', 'utf8').matchAll(/^\| \[`lifeline ([^`]+)`\]/gm)].map((match) => match[1] as string));
}

/** Each command's options, from its section of docs/cli.md (`## lifeline <command>` and its option table). */
function knownOptions(): Map<string, Set<string>> {
  const options = new Map<string, Set<string>>();
  for (const section of readFileSync('docs/cli.md', 'utf8').split(/^## lifeline /m).slice(1)) {
    const command = (section.split('\n')[0] as string).trim();
    options.set(command, new Set(['--help', ...[...section.matchAll(/^\| `(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1] as string)]));
  }
  return options;
}

const scripts = Object.keys((JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts);

interface Finding { readonly doc: string; readonly what: string }

function check(doc: string, text: string, topics: Set<string>, commands: Set<string>, options?: Map<string, Set<string>>): Finding[] {
  const findings: Finding[] = [];
  const code = codeOf(text);
  for (const snippet of code.filter((span) => !SOURCE_STRINGS.has(span))) {
    for (const match of snippet.matchAll(TOPIC)) {
      const topic = match[1] as string;
      if (!topics.has(topic)) findings.push({ doc, what: `topic ${topic} is not declared in topology.yaml` });
    }
    for (const match of snippet.matchAll(/(?:^|[\s;(|&])(?:lifeline|node bin\/lifeline\.mjs)((?: +[a-z][a-z-]*)+)/g)) {
      const words = (match[1] as string).trim().split(/ +/);
      const first = words[0] as string;
      const groups = [...commands].filter((path) => path === first || path.startsWith(`${first} `));
      if (groups.length === 0) {
        findings.push({ doc, what: `command lifeline ${first} does not exist` });
        continue;
      }
      const second = words[1];
      if (!commands.has(first) && second !== undefined && !commands.has(`${first} ${second}`)) {
        findings.push({ doc, what: `command lifeline ${first} ${second} does not exist` });
        continue;
      }
      // The options written after the command, up to the end of its line, a comment or the next command.
      const command = second !== undefined && commands.has(`${first} ${second}`) ? `${first} ${second}` : first;
      const rest = (snippet.slice((match.index ?? 0) + match[0].length).split(/\n| #|\||;|&&/)[0] as string);
      const known = options?.get(command);
      for (const flag of known ? rest.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g) : []) {
        if (!known?.has(flag[1] as string)) findings.push({ doc, what: `command lifeline ${command} has no option ${flag[1]}` });
      }
    }
    for (const match of snippet.matchAll(/npm run ([a-z][a-z:-]*)/g)) {
      if (!scripts.includes(match[1] as string)) findings.push({ doc, what: `npm script ${match[1]} is not in package.json` });
    }
  }
  const candidates = [
    ...code.flatMap((snippet) => snippet.split(/[\s,;()"'`]+/)),
    ...links(text).filter((target) => !/^[a-z]+:/.test(target)).map((target) => normalize(join(dirname(doc), target.replace(/#.*$/, '')))),
  ];
  const scaffolded = scaffoldedPaths(code);
  for (const candidate of candidates) {
    const path = candidate.replace(/[.:)\]]+$/, '').replace(/:\d+(:\d+)?$/, '');
    if (!PATH.test(path) || /[*<>{}…$]|\.\.\./.test(path)) continue;
    if (!existsSync(path) && !scaffolded.has(path)) findings.push({ doc, what: `file ${path} does not exist` });
  }
  return findings;
}

/** The files a `lifeline new …` shown in the same page creates: named as examples of what it writes. */
function scaffoldedPaths(code: readonly string[]): Set<string> {
  const paths = new Set<string>();
  for (const snippet of code) {
    for (const match of snippet.matchAll(/new (processor|connector) ([a-z][a-z0-9_]*)/g)) {
      const file = (match[2] as string).replace(/_/g, '-');
      if (match[1] === 'processor') paths.add(`processors/${file}.ts`).add(`tests/processors/${file}.unit.test.ts`);
      else paths.add(`connectors/${file}/${file}.ts`).add(`connectors/${file}`).add(`tests/connectors/${file}/${file}.unit.test.ts`);
    }
  }
  return paths;
}

test('every topic, command, npm script and file that README.md and docs/*.md name exists', () => {
  const topics = knownTopics();
  const commands = knownCommands();
  const options = knownOptions();
  assert.ok(commands.has('topology validate') && topics.size > 10, 'the lists to check against are read');
  assert.ok(options.get('consume')?.has('--from-beginning') && options.size === commands.size, 'every command\'s options are read');
  const findings = DOCS.flatMap((doc) => check(doc, readFileSync(doc, 'utf8'), topics, commands, options));
  const unique = [...new Set(findings.map((finding) => `${finding.doc}: ${finding.what}`))];
  assert.deepEqual(unique, []);
});

test('the check finds what does not exist', () => {
  const findings = check('docs/example.md', [
    'Read `billing.invoice.written.v1` with `lifeline topics describe billing.invoice.written.v1`.',
    '```bash', 'lifeline topology lint', 'npm run nope', 'node bin/lifeline.mjs frobnicate', 'lifeline topics describe --offline --verbose x   # --comment-flag', '```',
    'See `src/runtime/nowhere.ts`, [the guide](missing-guide.md) and `processors/dedup.ts`.',
    '`lifeline new processor claim_router` writes `processors/claim-router.ts`; `processors/other-router.ts` is not written by it.',
  ].join('\n'), new Set(['partner.service_charge.received.v1']), new Set(['topics describe', 'topology validate', 'run', 'new processor']), new Map([['topics describe', new Set(['--offline'])]]));
  assert.deepEqual([...new Set(findings.map((finding) => finding.what))].sort(), [
    'command lifeline frobnicate does not exist',
    'command lifeline topics describe has no option --verbose',
    'command lifeline topology lint does not exist',
    'file docs/missing-guide.md does not exist',
    'file processors/other-router.ts does not exist',
    'file src/runtime/nowhere.ts does not exist',
    'npm script nope is not in package.json',
    'topic billing.invoice.written.v1 is not declared in topology.yaml',
  ]);
});

test('the validation message README.md shows is what topology validate says for that mistake in the repository\'s topology.yaml', () => {
  const readme = readFileSync('README.md', 'utf8');
  const shown = /^topology\.yaml:\d+:\d+ processors\.charge_dedup\.config\.ttl: .*$/m.exec(readme)?.[0];
  assert.ok(shown, 'README.md shows a validation message for charge_dedup\'s ttl');
  assert.match(readme, /`ttl: 15 minutes` on `charge_dedup`/);
  const lines = readFileSync('topology.yaml', 'utf8').split('\n');
  const block = lines.findIndex((line) => line === '  charge_dedup:');
  const ttl = lines.findIndex((line, index) => index > block && line.includes('ttl: 7d'));
  assert.ok(block >= 0 && ttl > block, 'charge_dedup has a ttl of 7d in topology.yaml');
  lines[ttl] = (lines[ttl] as string).replace('ttl: 7d', 'ttl: 15 minutes');
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-readme-'));
  try {
    for (const linked of ['schemas', 'docs']) symlinkSync(resolve(linked), join(dir, linked));
    writeFileSync(join(dir, 'topology.yaml'), lines.join('\n'));
    let problems: ReturnType<typeof topologyProblemsOf>;
    try {
      loadTopology(join(dir, 'topology.yaml'), buildComponentRegistry(), repositoryTopologySecrets());
    } catch (error) {
      problems = topologyProblemsOf(error);
    }
    assert.deepEqual(problems?.map((problem) => formatTopologyProblem({ ...problem, file: 'topology.yaml' })), [shown]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
