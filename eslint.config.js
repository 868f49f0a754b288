// One lint setup for the whole repository: ESLint's recommended rules plus typescript-eslint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/dist.*/**', 'artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // The API holds no runtime: what only a host can answer goes through the gateway
    // (gateway/host-gateway.ts), so `kumo server` runs without drivers or agents (docs/distributed.md).
    files: ['packages/server/src/http/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/agent/*', '**/drivers/*', '**/drivers/**'],
              message:
                'http/ must not import the agent or drivers: ask a host through gateway/host-gateway.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests, their helpers and benchmarks read JSON responses loosely.
    files: ['**/*.test.ts', 'tests/**/*.ts', 'bench/**/*.ts', 'packages/*/src/testing/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
