// Builds the package: ESM (dist/esm) and CommonJS (dist/cjs), each with its .d.ts files.
//   node scripts/build.mjs [--out DIR] [--if-changed]   (DIR defaults to dist)
// --if-changed: nothing to do when the last build (its stamp) is newer than every source and config file (`npm start`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const at = process.argv.indexOf('--out');
const out = path.resolve(root, at > 0 ? process.argv[at + 1] : 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const stamp = path.join(out, '.build-stamp');

/** The newest modification time under the sources and of the files that shape the build. */
function newestInput() {
  const times = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.cjs.json', '../tsconfig.json'].map((f) => statSync(path.join(root, f)).mtimeMs);
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else times.push(statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'src'));
  return Math.max(...times);
}

if (process.argv.includes('--if-changed')) {
  let built = 0;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    // never built here
  }
  if (built > newestInput()) process.exit(0);
}

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
writeFileSync(stamp, `${new Date().toISOString()}\n`);
