// Lint: typescript-eslint's recommended rules, and the stage order of src/ (see README, "How it works"):
// a stage may import an earlier one, never a later one, and no module is part of an import cycle.
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** The stages, in the order a socket goes through them; adapters and cli sit on top of the agent. */
const STAGES = ['common', 'remembered', 'seen', 'measured', 'judged', 'explained', 'told', 'agent', 'adapters', 'cli'];
/** The package's entry points (src/*.ts): nothing inside a stage imports them. */
const ENTRIES = ['index', 'register', 'cli', 'jest', 'mocha', 'node-test', 'vitest'];

const stageOrder = STAGES.map((stage, index) => {
  const later = STAGES.slice(index + 1).filter((other) => !(stage === 'adapters' && other === 'cli'));
  return {
    files: [`src/${stage}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...later.map((other) => ({ group: [`../${other}/*`], message: `${stage}/ comes before ${other}/: a stage imports only earlier ones.` })),
            { group: ENTRIES.map((entry) => `../${entry}`), message: 'entry points import stages, not the reverse.' },
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'test/', 'benchmarks/', 'examples/', 'scripts/', 'prebuilds/', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'src/**/*.mts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.mts', '.js'] })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts'] },
      'import-x/extensions': ['.ts', '.mts', '.js'],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // Loading an optional module (tls, @opentelemetry/api) only where it is needed is deliberate.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  ...stageOrder,
);
