// `npm run lint`. typescript-eslint's type-aware recommended set, with what it does not fit
// turned off where it does not fit (see the comments); Prettier owns the layout
// (eslint-config-prettier turns off every rule that would fight it).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier/flat';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  // Includes no-floating-promises, no-misused-promises (an async callback where a void one is
  // expected, e.g. an event handler), await-thenable, only-throw-error and the no-unsafe-*
  // family: on src/ the latter finds few places, each an untyped `db.query` row worth typing
  // at the repository (`query<Row[]>`), and money code should not pass `any` around.
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // an async method without await is how NestJS hooks and interfaces often look
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests read response bodies (`res.body` is `any` in supertest) and fake servers' JSON:
    // typing every assertion would add casts, not safety.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // the dashboard runs in the browser (web/tsconfig.json is its TypeScript project)
    files: ['web/**/*.{ts,tsx}'],
    languageOptions: { globals: globals.browser },
  },
  {
    // scripts/, bench/ and the config files are plain CommonJS outside the TypeScript project
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  { files: ['**/*.js', '**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },
  prettier,
);
