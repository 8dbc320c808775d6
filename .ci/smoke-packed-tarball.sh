#!/usr/bin/env bash
# Packs the package, installs the tarball into a scratch project with npm's
# defaults (dependency install scripts blocked), and runs a leaky script under
# the preload: it must exit 1 and name the leaking line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

tarball="$(cd "$root" && npm pack --silent --pack-destination "$scratch" | tail -n 1)"
echo "packed $tarball"
tar -tzf "$scratch/$tarball" | sort | sed 's/^/  /'

cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" >/dev/null
cp "$root/examples/leaky-client.js" ./leaky.js

set +e
TCP_LEAK_AGENT_FAIL_ON_LEAK=1 node --require tcp-leak-agent/register leaky.js >stdout.txt 2>stderr.txt
code=$?
set -e
cat stderr.txt
line="$(grep -n 'http.get(' leaky.js | head -n 1 | cut -d: -f1)"
if [[ $code -ne 1 ]]; then echo "FAIL: expected exit code 1, got $code"; exit 1; fi
if ! head -n 1 stderr.txt | grep -q "^$scratch/leaky.js:$line:"; then
  echo "FAIL: the report does not start with $scratch/leaky.js:$line:"; exit 1
fi
set +e
npx --no-install tcp-leak-agent --close-wait-ms 300 -- node leaky.js >/dev/null 2>cli-stderr.txt
code=$?
set -e
if [[ $code -ne 1 ]] || ! grep -q "^$scratch/leaky.js:$line:" cli-stderr.txt; then
  cat cli-stderr.txt; echo "FAIL: the installed CLI did not exit 1 naming leaky.js:$line (exit $code)"; exit 1
fi
node -e "const a = require('tcp-leak-agent'); if (typeof a.start !== 'function') process.exit(1)"
node --input-type=module -e "import { start, verifyNoLeaks } from 'tcp-leak-agent'; if (typeof start !== 'function' || typeof verifyNoLeaks !== 'function') process.exit(1)"
# Every adapter entry resolves from an installed copy (each runner loads it by name).
node -e "for (const entry of ['tcp-leak-agent/jest', 'tcp-leak-agent/node-test']) require.resolve(entry)"
node --input-type=module -e "for (const entry of ['tcp-leak-agent/vitest', 'tcp-leak-agent/node-test']) import.meta.resolve(entry)"
printf "import { test } from 'node:test';\ntest('does nothing with sockets', () => {});\n" >clean.test.mjs
node --test --import tcp-leak-agent/node-test clean.test.mjs >/dev/null
echo "packed tarball: OK (exit 1, report names leaky.js:$line; the CLI too; CommonJS and ESM named exports load; adapters load)"
