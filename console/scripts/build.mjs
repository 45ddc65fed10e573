// Builds the console into dist/: index.html, assets/console.js (one minified bundle: Preact, the
// pages, the SDK's browser entry from source) and assets/console.css; bundle-size.json records the
// sizes (docs/console.md). No CDN: the API serves these files at /console.
//   node scripts/build.mjs [--if-changed]
// --if-changed: nothing to do when the last build is newer than every source (tests call it so).
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const sdk = path.resolve(root, '../sdk-js/src');
const out = path.join(root, 'dist');
const stamp = path.join(out, '.build-stamp');

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (process.argv.includes('--if-changed')) {
  let built = 0;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    // never built here
  }
  const inputs = Math.max(newest(path.join(root, 'src')), newest(sdk), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (built > inputs) process.exit(0);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'assets'), { recursive: true });
await build({
  entryPoints: [path.join(root, 'src/main.tsx')],
  outfile: path.join(out, 'assets/console.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // The SDK's browser entry from its sources: the console needs no prior SDK build.
  alias: { '@onecard/sdk/browser': path.join(sdk, 'browser.ts') },
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of ['console.css', 'favicon.svg']) copyFileSync(path.join(root, 'src', f), path.join(out, 'assets', f));
writeFileSync(
  path.join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OneCard console</title>
<link rel="icon" href="assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="assets/console.css">
<script src="assets/console.js" defer></script>
</head>
<body><div id="app"><p class="loading">OneCard console…</p></div></body>
</html>
`,
);
const size = (f) => {
  const body = readFileSync(path.join(out, 'assets', f));
  return { bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length };
};
writeFileSync(path.join(out, 'bundle-size.json'), `${JSON.stringify({ 'console.js': size('console.js'), 'console.css': size('console.css') }, null, 2)}\n`);
writeFileSync(stamp, `${new Date().toISOString()}\n`);
