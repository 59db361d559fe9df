# shellcheck shell=bash
# Sourced by .ci/run and dev/start.sh: makes `node` (and the `npm` that runs on it) the Node version
# pinned in .nvmrc whenever the machine's own Node is older than that version's major. The pinned
# binary comes from the npm registry's node-linux-<arch> package (npm verifies its integrity) and is
# kept in ${LIFELINE_NODE_CACHE:-~/.cache/lifeline/node}/<version>/, so only the first run downloads.
lifeline_use_pinned_node() {
  local root pinned major have cache arch package tmp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  pinned="$(tr -d ' \nv' < "$root/.nvmrc")"
  major="${pinned%%.*}"
  have="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$have" -ge "$major" ] 2>/dev/null; then
    return 0
  fi
  cache="${LIFELINE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeline/node}/$pinned"
  if [ ! -x "$cache/bin/node" ]; then
    case "$(uname -m)" in
      x86_64 | amd64) arch=x64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) echo "no pinned Node $pinned for $(uname -m): install Node $major+ yourself (https://nodejs.org)" >&2; return 1 ;;
    esac
    [ "$(uname -s)" = Linux ] || { echo "Node $major+ is needed: https://nodejs.org" >&2; return 1; }
    command -v npm >/dev/null || { echo "npm is needed to fetch Node $pinned (or install Node $major+: https://nodejs.org)" >&2; return 1; }
    package="node-linux-$arch@$pinned"
    echo "Node $(node -v 2>/dev/null || echo '(none)') is older than $major: fetching $package from the npm registry into $cache" >&2
    tmp="$(mktemp -d)"
    # npm pack checks the tarball against the registry's integrity hash.
    (cd "$tmp" && npm pack "$package" --silent >/dev/null) || { rm -rf "$tmp"; echo "could not fetch $package" >&2; return 1; }
    mkdir -p "$cache/bin"
    tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp" package/bin/node package/LICENSE
    mv "$tmp/package/LICENSE" "$cache/LICENSE"
    mv "$tmp/package/bin/node" "$cache/bin/node.partial" && mv "$cache/bin/node.partial" "$cache/bin/node"
    rm -rf "$tmp"
  fi
  export PATH="$cache/bin:$PATH"
  hash -r
  echo "using the pinned Node $(node -v) from $cache (the machine's Node is older than $major)" >&2
}
