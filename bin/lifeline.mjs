#!/usr/bin/env node
// The `lifeline` command. Runs the built JavaScript in dist/ (`npm run build`) when it is there and
// newer than every source file: no TypeScript compiler is loaded. Otherwise (a checkout that was
// never built, or a source changed since the build) it runs the TypeScript sources through tsx's
// loader, so a change never needs a build before a run. LIFELINE_FROM_SOURCE=1 forces the sources;
// LIFELINE_FROM_DIST=1 forces dist/ (the container image sets it: it holds no TypeScript tooling).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { requireSupportedNode } from './node-version.mjs';

// Output to a reader that went away (`lifeline groups describe … | head`) ends the command quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
}

const root = new URL('../', import.meta.url);
requireSupportedNode(root);
const built = new URL('dist/src/cli/main.js', root);
const stamp = new URL('dist/BUILD.json', root);
const SOURCES = ['src', 'connectors', 'processors', 'dev', 'schemas', 'console', 'deploy/versions.json'];

/** Whether any source file changed after the build (the image holds no sources: never). */
function sourcesNewerThan(time) {
  const walk = (dir) => {
    let entries;
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return (statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0) > time; }
    for (const entry of entries) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory() ? walk(path) : statSync(path).mtimeMs > time) return true;
    }
    return false;
  };
  return SOURCES.some((dir) => walk(new URL(dir, root).pathname));
}

if (process.env.LIFELINE_FROM_DIST === '1' || (process.env.LIFELINE_FROM_SOURCE !== '1' && existsSync(built) && !sourcesNewerThan(statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0))) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
