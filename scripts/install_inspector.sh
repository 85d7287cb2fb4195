#!/usr/bin/env bash
# Install the official MCP Inspector, pinned, for tests/test_inspector.py (a third-party MCP client
# driving our server over stdio). Prints the path of its `mcp-inspector` command on stdout.
#
#   bash scripts/install_inspector.sh     # once; the test then finds it on its own
#
# It goes to a cache folder outside the repository (override with MCP_INSPECTOR_DIR), so linters
# and git never see node_modules. The package asks for Node >= 22.19; on Node 20 npm warns
# (EBADENGINE) but the --cli mode the test uses works.
set -euo pipefail

VERSION=2.12.0
DIR="${MCP_INSPECTOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-server-comfyui/inspector-$VERSION}"
BIN="$DIR/node_modules/.bin/mcp-inspector"
MANIFEST="$DIR/node_modules/@modelcontextprotocol/inspector/package.json"

if [ -x "$BIN" ] && grep -q "\"version\": \"$VERSION\"" "$MANIFEST" 2>/dev/null; then
  echo "$BIN"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install_inspector.sh: npm not found; install Node.js (20 or newer) first" >&2
  exit 1
fi
mkdir -p "$DIR"
timeout 300 npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error \
  "@modelcontextprotocol/inspector@$VERSION" >&2
echo "$BIN"
