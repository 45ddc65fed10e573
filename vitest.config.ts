import { createRequire } from 'node:module';
import swc from 'unplugin-swc';
import { configDefaults, defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

/**
 * The tests that run a real pcscd (PC/SC). A native call into it can block a test worker past
 * vitest's own time limits (seen under load), so `.ci/run` runs them apart, bounded by `timeout`
 * (ONECARD_PCSC_TESTS=apart leaves them out of the main run).
 */
const PCSC_TESTS = ['api/test/card-pcsc.test.ts', 'sdk-js/src/reader/pcsc-reader.test.ts', 'api/test/example-reader-simulator-pcsc.test.ts'];

export default defineConfig({
  // type-graphql and MikroORM read decorator metadata, which esbuild does not emit; swc does.
  plugins: [
    swc.vite({
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        target: 'es2022',
      },
    }),
  ],
  resolve: {
    // Node loads graphql's CJS build for type-graphql; our code must get the very same copy.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['api/src/**/*.test.ts', 'api/test/**/*.test.ts', 'sdk-js/src/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...(process.env.ONECARD_PCSC_TESTS === 'apart' ? PCSC_TESTS : [])],
    globalSetup: ['api/test/global-setup.ts'],
    setupFiles: ['reflect-metadata'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
