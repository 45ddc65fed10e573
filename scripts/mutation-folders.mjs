// @ts-check
/**
 * The money code under mutation testing (docs/testing.md): for each measured unit, the files it
 * mutates and the test files that own its behaviour. Globs, not file lists, so that files added,
 * split or renamed (readers/session is being restructured) are picked up; a new test file is
 * picked up when its name starts like the existing ones.
 *
 * Order: small and fast first, as `npm run test:mutation` runs them.
 *
 * @type {Record<string, { mutate: string[]; tests: string[] }>}
 */
export const MONEY_FOLDERS = {
  cardcrypto: {
    mutate: ['api/src/cardcrypto/**/*.ts'],
    tests: ['api/src/cardcrypto/**/*.test.ts'],
  },
  ledger: {
    mutate: ['api/src/ledger/**/*.ts'],
    // graphql-conventions holds the ledger's GraphQL queries and mutations (pagination, refusals).
    tests: ['api/src/ledger/**/*.test.ts', 'api/test/ledger*.test.ts', 'api/test/graphql-conventions.test.ts'],
  },
  idempotency: {
    mutate: ['api/src/graphql/idempotency.ts'],
    tests: ['api/src/graphql/idempotency*.test.ts', 'api/test/idempotency*.test.ts'],
  },
  'token-verifier': {
    mutate: ['api/src/auth/token-verifier.ts'],
    tests: ['api/src/auth/token-verifier*.test.ts', 'api/test/oauth*.test.ts'],
  },
  visibility: {
    mutate: ['api/src/tenancy/visibility.ts'],
    tests: ['api/test/tenancy*.test.ts', 'api/test/tenant-isolation*.test.ts'],
  },
  fee: {
    mutate: ['api/src/tenancy/fee.ts'],
    // tenancy.test.ts holds feeFor()'s table; clearing.test.ts holds feeFor() and clearing's SQL fee equal.
    tests: ['api/src/tenancy/**/*.test.ts', 'api/test/tenancy*.test.ts', 'api/src/settlement/clearing*.test.ts', 'api/test/fee*.test.ts'],
  },
  clearing: {
    mutate: ['api/src/settlement/clearing.ts'],
    tests: ['api/src/settlement/**/*.test.ts', 'api/test/settlement*.test.ts'],
  },
  settlement: {
    mutate: ['api/src/settlement/**/*.ts'],
    tests: ['api/src/settlement/**/*.test.ts', 'api/test/settlement*.test.ts', 'api/test/offline-upload*.test.ts'],
  },
  payments: {
    mutate: ['api/src/payments/**/*.ts'],
    tests: ['api/src/payments/**/*.test.ts', 'api/test/payment*.test.ts', 'api/test/card-purchase*.test.ts', 'api/test/tenant-isolation*.test.ts'],
  },
  topups: {
    mutate: ['api/src/topups/**/*.ts'],
    tests: ['api/src/topups/**/*.test.ts', 'api/test/topup*.test.ts'],
  },
  bills: {
    mutate: ['api/src/bills/**/*.ts'],
    tests: ['api/src/bills/**/*.test.ts', 'api/test/bill*.test.ts'],
  },
  'readers-session': {
    mutate: ['api/src/readers/session/**/*.ts'],
    tests: ['api/src/readers/**/*.test.ts', 'api/test/card-*.test.ts', 'api/test/readers*.test.ts'],
  },
};
