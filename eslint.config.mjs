import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.node-red/', 'test-artifacts/', 'nodes/*.html'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['nodes/*.ts', 'nodes/editor/*.ts'],
    rules: {
      // Node-RED calls node constructors and dialog callbacks with `this` bound; closures name it `node`,
      // as the core nodes do.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['node'] }],
    },
  },
  {
    files: ['nodes/lib/**/*.ts'],
    rules: {
      // lib/ is the runtime core: it knows MQTT, not Node-RED; the node files and node-red/ translate.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node-red', '@node-red/*', '**/node-red/*'], message: 'lib/ does not know Node-RED.' },
          ],
        },
      ],
    },
  },
  {
    // The dialogs' code runs in the editor's page, which provides jQuery and RED besides the browser's own.
    files: ['nodes/editor/**/*.ts'],
    languageOptions: { globals: { ...globals.browser, $: 'readonly', RED: 'readonly' } },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // The test helper and core nodes are CommonJS without types.
      '@typescript-eslint/no-require-imports': 'off',
      // A test that reaches a value that is not there should fail loudly, which `!` does.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['scripts/**/*.mjs', 'eslint.config.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
