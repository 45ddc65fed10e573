// Writes src/operations/generated.graphql: one operation for every query and mutation of the schema
// that no hand-written document in src/operations selects, with a default selection derived from
// the schema, so that a field added to the API is in the SDK at the next `npm run codegen -w sdk-js`.
//   node scripts/operations.mjs           write it
//   node scripts/operations.mjs --check   fail when what is checked in differs (a stale generation)
// A hand-written operation for a field replaces the generated one at the next run.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateOperations, GENERATED_FILE } from './operations-generator.mjs';

const sdk = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const operationsDir = path.join(sdk, 'src', 'operations');
const target = path.join(operationsDir, GENERATED_FILE);

const handWritten = Object.fromEntries(
  fs
    .readdirSync(operationsDir)
    .filter((f) => f.endsWith('.graphql') && f !== GENERATED_FILE)
    .sort()
    .map((f) => [f, fs.readFileSync(path.join(operationsDir, f), 'utf8')]),
);
const { text, generated } = generateOperations(fs.readFileSync(path.join(sdk, '..', 'schema', 'schema.graphql'), 'utf8'), handWritten);

if (process.argv.includes('--check')) {
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (current !== text) {
    console.error(`sdk-js/src/operations/${GENERATED_FILE} is stale (the schema or the hand-written operations changed): run \`npm run codegen -w sdk-js\` and commit the result.`);
    process.exit(1);
  }
  console.log(`sdk-js/src/operations/${GENERATED_FILE} is current (${generated.length} generated operations).`);
} else {
  fs.writeFileSync(target, text);
  console.log(`Wrote sdk-js/src/operations/${GENERATED_FILE}: ${generated.length} operations for the root fields no hand-written operation selects.`);
}
