// Builds the package: ESM (dist/esm) and CommonJS (dist/cjs), each with its .d.ts files.
//   node scripts/build.mjs [--out DIR]   (DIR defaults to dist)
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const at = process.argv.indexOf('--out');
const out = path.resolve(root, at > 0 ? process.argv[at + 1] : 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(out, { recursive: true, force: true });
for (const [config, dir] of [
  ['tsconfig.build.json', 'esm'],
  ['tsconfig.cjs.json', 'cjs'],
]) {
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(root, config), '--outDir', path.join(out, dir)], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
// dist/cjs holds CommonJS even though the package is "type": "module".
mkdirSync(path.join(out, 'cjs'), { recursive: true });
writeFileSync(path.join(out, 'cjs', 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
