import type { Command, Option } from 'commander';

/**
 * docs/cli.md, rendered from the commander program itself: every command with its arguments and
 * options as `--help` shows them, so the reference cannot drift from the CLI (a test compares the
 * committed file with `lifeline docs cli`).
 */
export function renderCliDocs(program: Command): string {
  const lines = [
    '# CLI reference',
    '',
    '<!-- Generated from the commands by `lifeline docs cli --write`; do not edit by hand. -->',
    '',
    'Every command answers `--help`. Commands that read or change a cluster take `--topology FILE`',
    '(default `topology.yaml`) for the connections and the topic catalogue; results go to stdout',
    '(`--json` where it helps), progress to stderr. Roles and exit codes are in [operations.md](operations.md).',
    '',
    '| command | what it does |',
    '| --- | --- |',
  ];
  const commands = walk(program, []);
  for (const { path, command } of commands) lines.push(`| [\`lifeline ${path.join(' ')}\`](#${anchor(path)}) | ${cell(command.description())} |`);
  lines.push('');
  for (const { path, command } of commands) lines.push(...renderCommand(path, command));
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Leaf commands (and groups that act themselves), depth first, in registration order. */
function walk(command: Command, path: string[]): Array<{ path: string[]; command: Command }> {
  const result: Array<{ path: string[]; command: Command }> = [];
  for (const child of command.commands) {
    if (child.name() === 'help') continue;
    const childPath = [...path, child.name()];
    const children = child.commands.filter((grandchild) => grandchild.name() !== 'help');
    if (children.length === 0) result.push({ path: childPath, command: child });
    else result.push(...walk(child, childPath));
  }
  return result;
}

function renderCommand(path: string[], command: Command): string[] {
  const usage = `lifeline ${path.join(' ')} ${command.usage()}`.trim();
  const lines = [`## lifeline ${path.join(' ')}`, '', command.description(), '', '```', usage, '```', ''];
  const args = command.registeredArguments;
  if (args.length > 0) {
    lines.push('| argument | description |', '| --- | --- |');
    for (const arg of args) lines.push(`| \`${arg.required ? `<${arg.name()}>` : `[${arg.name()}]`}\` | ${cell(arg.description)} |`);
    lines.push('');
  }
  const options = command.options.filter((option: Option) => !option.hidden);
  if (options.length > 0) {
    lines.push('| option | description | default |', '| --- | --- | --- |');
    for (const option of options) {
      const fallback = option.defaultValue === undefined ? '' : `\`${JSON.stringify(option.defaultValue)}\``;
      lines.push(`| \`${option.flags}\` | ${cell(option.description)}${option.mandatory ? ' (required)' : ''} | ${fallback} |`);
    }
    lines.push('');
  }
  return lines;
}

function anchor(path: string[]): string {
  return `lifeline-${path.join('-')}`.toLowerCase().replace(/[^a-z0-9-]/g, '');
}

function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

/** The command paths of a program (`topology validate`, `dlq replay`, …), for checking docs that name commands. */
export function commandPaths(program: Command): string[] {
  return walk(program, []).map(({ path }) => path.join(' '));
}
