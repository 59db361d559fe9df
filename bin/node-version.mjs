// Whether this Node can run Lifeline: its major must be at least that of the version pinned in
// .nvmrc (Node 24 LTS). An older Node otherwise fails deep inside a dependency (Node 20: "WebSocket is
// not defined" from @medplum/core, after a page of minified source); this says what to do instead.
import { readFileSync } from 'node:fs';

/** The pinned version from .nvmrc (the container image holds no .nvmrc: its Node is the pinned one). */
export function pinnedNodeVersion(root) {
  try {
    return readFileSync(new URL('.nvmrc', root), 'utf8').trim().replace(/^v/, '');
  } catch {
    return undefined;
  }
}

/** Undefined when `running` is new enough for `pinned`, else the message that explains what to do. */
export function unsupportedNodeMessage(running, pinned) {
  if (!pinned) return undefined;
  const major = (version) => Number(version.split('.')[0]);
  if (major(running) >= major(pinned)) return undefined;
  return `Lifeline needs Node.js ${major(pinned)} or newer (.nvmrc pins ${pinned}); this is Node ${running}.\n` +
    'Run `. bin/pinned-node.sh && lifeline_use_pinned_node` in this shell to use the pinned Node (fetched once\n' +
    'from the npm registry, as dev/start.sh and .ci/run do), or install Node.js ' + major(pinned) + ' LTS.';
}

/** Exits with the message when this Node is too old. */
export function requireSupportedNode(root) {
  const message = unsupportedNodeMessage(process.versions.node, pinnedNodeVersion(root));
  if (!message) return;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
