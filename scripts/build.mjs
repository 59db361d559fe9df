// `npm run build`: compiles the TypeScript of src/, connectors/, processors/ and dev/ to JavaScript in
// dist/ (tsc, tsconfig.build.json: relative `.ts` imports rewritten to `.js`), builds the console's page, copies the files the
// code reads next to itself (the ops schemas, the Kafka pom), and stamps the build. bin/lifeline.mjs
// runs dist/ when its stamp is newer than every source file, and the sources through tsx otherwise.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const started = Date.now();
const COMPILED = ['src', 'connectors', 'processors', 'dev'];
rmSync(dist, { recursive: true, force: true });
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);
cpSync(join(root, 'schemas'), join(dist, 'schemas'), { recursive: true });
// Files the code reads beside itself (the Kafka pom, simulator seeds): every non-TypeScript file.
for (const folder of COMPILED) {
  for (const file of readdirSync(join(root, folder), { recursive: true, withFileTypes: true })) {
    if (!file.isFile() || /\.(ts|sh)$/.test(file.name)) continue;
    const from = join(file.parentPath, file.name);
    const to = join(dist, relative(root, from));
    mkdirSync(dirname(to), { recursive: true });
    cpSync(from, to);
  }
}
// The console's page (Vite), served from console/dist beside the sources and dist/console/dist beside the build.
const consoleBuild = spawnSync('npm', ['run', '--silent', 'build:console'], { cwd: root, stdio: 'inherit' });
if (consoleBuild.status !== 0) process.exit(consoleBuild.status ?? 1);
cpSync(join(root, 'console/dist'), join(dist, 'console/dist'), { recursive: true });
const commit = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
writeFileSync(join(dist, 'BUILD.json'), `${JSON.stringify({
  builtAt: new Date().toISOString(),
  node: process.version,
  commit: commit.status === 0 ? commit.stdout.trim() : undefined,
}, null, 2)}\n`);
console.log(`built dist/ in ${Date.now() - started} ms`);
