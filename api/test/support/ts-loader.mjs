/**
 * Runs the API's TypeScript sources in a plain `node` process (the chaos test's API child), compiled
 * on the fly by swc the way vitest compiles them (decorator metadata, which type-graphql and
 * MikroORM read): `node --import ./api/test/support/ts-loader.mjs api/src/main.ts`. Tests only.
 */
import { register } from 'node:module';

register('./ts-loader-hooks.mjs', import.meta.url);
