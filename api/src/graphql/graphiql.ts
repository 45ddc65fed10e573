import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * Serves the GraphiQL IDE without any network access beyond our own origin: the IDE,
 * React, CodeMirror and the fonts are bundled from node_modules at runtime by esbuild,
 * instead of the usual CDN <script> tags that fail on our offline machines.
 */

export interface GraphiqlAsset {
  contentType: string;
  body: Buffer;
}

// The endpoint is read from the page at runtime so one bundle serves any mount path.
const ENTRY = `
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';

const root = document.getElementById('graphiql');
const fetcher = createGraphiQLFetcher({ url: root.dataset.endpoint });
createRoot(root).render(createElement(GraphiQL, { fetcher }));
`;

// @graphiql/toolkit lazily imports the optional `graphql-ws` (only used when a
// subscriptionUrl is passed, which we never do). It is not installed, so give esbuild
// a stub instead of failing the build or leaving a bare import() in the bundle.
const stubGraphqlWs: Plugin = {
  name: 'stub-graphql-ws',
  setup(b) {
    b.onResolve({ filter: /^graphql-ws$/ }, () => ({ path: 'graphql-ws', namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      contents: 'export function createClient() { throw new Error("graphql-ws is not bundled"); }',
      loader: 'js',
    }));
  },
};

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

async function buildAssets(): Promise<Map<string, GraphiqlAsset>> {
  const result = await build({
    stdin: {
      contents: ENTRY,
      loader: 'js',
      // Node-style resolution walks up from here to the workspace node_modules, which
      // works both from api/src (vitest) and api/dist (compiled).
      resolveDir: dirname(fileURLToPath(import.meta.url)),
      sourcefile: 'graphiql-entry.js',
    },
    bundle: true,
    minify: true,
    // iife without splitting: CodeMirror's dynamic imports are inlined, so the
    // whole IDE is exactly one JS and one CSS file.
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    define: { 'process.env.NODE_ENV': '"production"' },
    // Any font/image the CSS references is inlined, so no extra requests or files.
    loader: { '.woff2': 'dataurl', '.woff': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
    entryNames: 'graphiql',
    outdir: '/graphiql-out', // never written (write: false); only names the outputs
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    plugins: [stubGraphqlWs],
  });

  const assets = new Map<string, GraphiqlAsset>();
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    const ext = name.slice(name.lastIndexOf('.'));
    assets.set(name, { contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream', body: Buffer.from(file.contents) });
  }
  return assets;
}

let assetsPromise: Promise<Map<string, GraphiqlAsset>> | undefined;

/** Builds (once, lazily, cached in memory; concurrent callers share one build promise) the GraphiQL page and its assets. */
export function graphiqlAssets(): Promise<Map<string, GraphiqlAsset>> {
  // A failed build is not cached, so a later request can retry instead of failing forever.
  assetsPromise ??= buildAssets().catch((err: unknown) => {
    assetsPromise = undefined;
    throw err;
  });
  return assetsPromise;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's one inline style; the Content-Security-Policy allows it by its hash (http/security-headers.ts). */
export const GRAPHIQL_PAGE_STYLE = 'html, body, #graphiql { height: 100%; margin: 0; }';

/**
 * Returns the HTML page for GET /graphql. `endpoint` is the path the IDE posts queries to
 * (e.g. "/graphql"); `assetBase` the path prefix where assets are served (e.g. "/graphql/assets").
 */
export function graphiqlPage(opts: { endpoint: string; assetBase: string }): string {
  const base = escapeHtml(opts.assetBase.replace(/\/+$/, ''));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OneCard GraphQL</title>
<style>${GRAPHIQL_PAGE_STYLE}</style>
<link rel="stylesheet" href="${base}/graphiql.css">
<script src="${base}/graphiql.js" defer></script>
</head>
<body>
<div id="graphiql" data-endpoint="${escapeHtml(opts.endpoint)}"></div>
</body>
</html>
`;
}
