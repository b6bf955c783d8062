// ESLint flat config: TypeScript sources with typescript-eslint's recommended rules.
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', '.node-red-data/**', 'nodes/**/*.html'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Type-aware rules that catch real bugs: a promise nobody awaits or catches (its rejection is lost, or crashes
    // the process as an unhandled rejection), and a promise given where a callback's result is ignored (an async
    // listener on an EventEmitter, an async function as a condition).
    files: ['lib/**/*.ts', 'nodes/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.build.json', './tsconfig.json'], tsconfigRootDir: __dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // Node-RED's node constructors are plain functions called with `this`: `const node = this` is the idiom.
    files: ['nodes/**/*.ts'],
    rules: { '@typescript-eslint/no-this-alias': 'off' },
  },
  {
    // Tests and benchmarks load compiled node modules and optional peers as Node-RED does: with require().
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['scripts/**/*.js', 'bin/**/*.js', 'eslint.config.js', 'bench/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        process: 'readonly',
        console: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The editor's shared script (served to the browser by Node-RED, required as a module by the unit tests).
    files: ['resources/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { self: 'readonly', module: 'writable', $: 'readonly', RED: 'readonly', setTimeout: 'readonly' },
    },
    rules: { '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }] },
  },
);
