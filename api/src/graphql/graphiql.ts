import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * Serves the GraphiQL IDE without any network access beyond our own origin: the IDE,
 * React, CodeMirror and the fonts are bundled from node_modules at runtime by esbuild,
 * instead of the usual CDN <script> tags that fail on our offline machines.
 */

/** What the editor shows on a first visit: public fields, then one that needs a token. */
export const STARTER_QUERY = `# Welcome to OneCard's GraphQL API.
# serverInfo is public; cities needs an access token: in development, use
# "Sign in as a demo client" above, or put {"Authorization": "Bearer …"} in Headers below.
{
  serverInfo { version publicUrl time }
  cities(first: 5) { edges { node { code name timeZone currency } } }
}
`;

export interface GraphiqlAsset {
  contentType: string;
  body: Buffer;
}

// The endpoint is read from the page at runtime so one bundle serves any mount path. In development
// the page also names the demo sign-in (data-dev-sign-in): a bar above the IDE picks a demo client,
// fetches a token for it and puts it in the Headers editor. All of it lives in this bundle, a file
// we serve: the page has no inline script, so a CSP without 'unsafe-inline' allows it.
const ENTRY = `
import { createElement as h, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/graphiql.css';

const root = document.getElementById('graphiql');
const fetcher = createGraphiQLFetcher({ url: root.dataset.endpoint });
const devSignIn = root.dataset.devSignIn;
const STARTER = ${JSON.stringify(STARTER_QUERY)};

function SignInBar({ onToken }) {
  const [clients, setClients] = useState([]);
  const [chosen, setChosen] = useState('');
  const [status, setStatus] = useState('');
  useEffect(() => {
    fetch(devSignIn + '/demo-clients').then((r) => r.json()).then((b) => {
      setClients(b.clients);
      if (b.clients[0]) setChosen(b.clients[0].name);
    }, () => setStatus('no demo clients'));
  }, []);
  const signIn = async () => {
    setStatus('signing in…');
    const r = await fetch(devSignIn + '/demo-token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: chosen }) });
    const b = await r.json();
    if (!r.ok) return setStatus(b.error);
    setStatus('signed in as the demo ' + b.client + ' (scopes: ' + b.scope + ')');
    onToken(b.authorization);
  };
  return h('div', { className: 'onecard-dev-sign-in', style: { display: 'flex', gap: '8px', alignItems: 'center', padding: '6px 12px', font: '13px system-ui, sans-serif', borderBottom: '1px solid #ddd' } },
    h('span', null, 'Development:'),
    h('select', { 'aria-label': 'demo client', value: chosen, onChange: (e) => setChosen(e.target.value) }, clients.map((c) => h('option', { key: c.name, value: c.name }, c.name))),
    h('button', { type: 'button', id: 'demo-sign-in', onClick: signIn, disabled: !chosen }, 'Sign in as a demo client'),
    h('span', { role: 'status' }, status));
}

function App() {
  const [authorization, setAuthorization] = useState(null);
  const ide = h(GraphiQL, {
    key: authorization ?? 'anonymous',
    fetcher,
    defaultQuery: STARTER,
    ...(authorization ? { headers: JSON.stringify({ Authorization: authorization }, null, 2) } : {}),
  });
  if (!devSignIn) return ide;
  return h('div', { style: { display: 'flex', flexDirection: 'column', height: '100%' } },
    h(SignInBar, { onToken: setAuthorization }),
    h('div', { style: { flex: '1', minHeight: '0' } }, ide));
}

createRoot(root).render(h(App));
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
 * (e.g. "/graphql"); `assetBase` the path prefix where assets are served (e.g. "/graphql/assets");
 * `devSignIn`, in development only, where the demo sign-in answers (e.g. "/graphql/dev").
 */
export function graphiqlPage(opts: { endpoint: string; assetBase: string; devSignIn?: string }): string {
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
<div id="graphiql" data-endpoint="${escapeHtml(opts.endpoint)}"${opts.devSignIn ? ` data-dev-sign-in="${escapeHtml(opts.devSignIn)}"` : ''}></div>
</body>
</html>
`;
}
