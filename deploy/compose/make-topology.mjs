// Rewrites deploy/compose/topology.yaml from the repository's topology.yaml: its own header and
// `connections:` block stay, everything from `runtime:` on is copied. Run after changing
// topology.yaml (tests/deploy/deploy.unit.test.ts fails until then): node deploy/compose/make-topology.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const target = new URL('topology.yaml', import.meta.url);
const source = readFileSync(new URL('../../topology.yaml', import.meta.url), 'utf8');
const current = readFileSync(target, 'utf8');
const marker = '\nruntime:\n';
if (!source.includes(marker) || !current.includes(marker)) throw new Error('both files need a top-level `runtime:` section after `connections:`');
writeFileSync(target, current.slice(0, current.indexOf(marker)) + source.slice(source.indexOf(marker)));
console.log('deploy/compose/topology.yaml rewritten from topology.yaml');
