// A city's ridership for a transit operator's planners: rides by hour and where riders go (the top
// origin–destination pairs), as one self-contained HTML page with SVG charts (no chart library) and
// the platform's CSV downloads, against a running OneCard (`npm start` in another terminal first):
//   node examples/settlement-report/ridership.mjs --city GZ --date 2026-11-25
//   node examples/settlement-report/ridership.mjs --help
// It uses the operator's (or, with --client issuer, the Guangzhou card company's) OAuth client from
// $ONECARD_DATA_DIR/demo.json, or ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OneCardClient } from '@onecard/sdk';

const HELP = `usage: node examples/settlement-report/ridership.mjs --city CODE [options]

Reads a city's ridership by hour and its origin–destination pairs (docs/analytics.md) for a span of
business days, and writes ridership.html (charts: rides by hour, the top pairs) and the CSV
downloads (ridership by hour and by stop, the pairs by stop) into an output folder.

  --city CODE        the city (required)
  --date YYYY-MM-DD  the first business day; default: yesterday in the city's time zone
  --to YYYY-MM-DD    the last business day (inclusive); default: --date
  --window MINUTES   the transfer window of the pairs, 1 to 240; default 30
  --top N            how many pairs to chart; default 10
  --out DIR          the output folder; default: ridership-<city>-<date> in the current folder
  --client NAME      the demo.json client to use: operator (default) or issuer (a card company)
  --help             this text
`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      city: { type: 'string' },
      date: { type: 'string' },
      to: { type: 'string' },
      window: { type: 'string', default: '30' },
      top: { type: 'string', default: '10' },
      out: { type: 'string' },
      client: { type: 'string', default: 'operator' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (!opts.city) usage('--city is required');
for (const name of ['date', 'to']) if (opts[name] !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts[name])) usage(`--${name} takes YYYY-MM-DD`);
if (!/^\d{1,3}$/.test(opts.window)) usage('--window takes whole minutes');
if (!/^\d{1,3}$/.test(opts.top) || Number(opts.top) < 1) usage('--top takes a positive number');
if (!['operator', 'issuer'].includes(opts.client)) usage('--client is operator or issuer');

function usage(message) {
  process.stderr.write(`ridership: ${message}\n\n${HELP}`);
  process.exit(2);
}

function fail(message) {
  console.error(`ridership: ${message}`);
  process.exit(1);
}

// --- as whom --------------------------------------------------------------------------------------

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR || '.onecard');

async function credentials() {
  if (process.env.ONECARD_CLIENT_ID) {
    return { baseUrl: process.env.ONECARD_URL || 'http://localhost:4000', clientId: process.env.ONECARD_CLIENT_ID, clientSecret: process.env.ONECARD_CLIENT_SECRET };
  }
  const file = path.join(dataDir, 'demo.json');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (!text) fail(`no ${file}: start OneCard first (npm start), or set ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET`);
  const demo = JSON.parse(text);
  const client = demo.clients[opts.client];
  return { baseUrl: process.env.ONECARD_URL || demo.publicUrl, clientId: client.client_id, clientSecret: client.client_secret };
}

const creds = await credentials();
const baseUrl = creds.baseUrl.replace(/\/+$/, '');
const onecard = new OneCardClient({ ...creds, scope: 'settlements:read' });

/** A Bearer token for the CSV downloads (they take a plain access token, not GraphQL). */
async function accessToken() {
  const res = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(creds.clientId)}:${encodeURIComponent(creds.clientSecret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'settlements:read' }),
  });
  if (!res.ok) fail(`token request refused: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

const esc = (text) => String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
const r1 = (x) => Math.round(x * 10) / 10; // geometry only: pixels
const int = (n) => n.toLocaleString('en-US');

// --- 1. the city and the days ---------------------------------------------------------------------

const { cities } = await onecard.request('query Cities { cities(first: 100) { edges { node { id code name timeZone } } } }');
const city = cities.edges.map((e) => e.node).find((c) => c.code === opts.city.toUpperCase());
if (!city) fail(`no city ${opts.city}`);
const yesterday = () => {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: city.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  return new Date(Date.parse(`${today}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
};
const from = opts.date ?? yesterday();
const to = opts.to ?? from;
const window = Number(opts.window);
const outDir = path.resolve(process.env.INIT_CWD || process.cwd(), opts.out ?? `ridership-${city.code}-${from}`);
await fs.mkdir(outDir, { recursive: true });

// --- 2. the answers: GraphQL for the page, the CSV downloads beside it -----------------------------

const { ridership } = await onecard.request(
  `query Ridership($city: ID!, $from: String!, $to: String!) { ridership(city: $city, from: $from, to: $to, groupBy: HOUR) { minimumGroupSize suppressedGroups groups { key rides riders } } }`,
  { city: city.id, from, to },
);
const { originDestination: od } = await onecard.request(
  `query Pairs($city: ID!, $from: String!, $to: String!, $window: Int!) { originDestination(city: $city, from: $from, to: $to, level: STOP, transferWindowMinutes: $window) { minimumGroupSize suppressedPairs pairs { origin destination transfer trips riders } } }`,
  { city: city.id, from, to, window },
);
if (!ridership || !od) fail(`the ridership of ${city.code} is its card company's and the operator's`);

const token = await accessToken();
const files = [];
for (const route of [`ridership.csv?groupBy=HOUR`, `ridership.csv?groupBy=STOP`, `origin-destination.csv?level=STOP&transferWindowMinutes=${window}`]) {
  const url = `${baseUrl}/analytics/${route}&city=${encodeURIComponent(city.id)}&from=${from}&to=${to}`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) fail(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  const name = path.basename(/filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'ridership.csv');
  await fs.writeFile(path.join(outDir, name), await res.text());
  files.push(name);
}

// --- 3. the charts --------------------------------------------------------------------------------

/** A round step (1, 2 or 5 × 10ⁿ) that covers max in about four. */
function niceStep(max) {
  const raw = Math.ceil(max / 4) || 1;
  const pow = 10 ** (String(raw).length - 1);
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
}

/** Rides per local hour, 00 to 23: hours with too few riders to show are marked, not drawn. */
function hourChart(groups, minimum) {
  const byHour = new Map(groups.map((g) => [Number(g.key), g]));
  const step = niceStep(Math.max(0, ...groups.map((g) => g.rides)));
  const top = step * Math.max(1, Math.ceil(Math.max(0, ...groups.map((g) => g.rides)) / step));
  const W = 760, H = 250, L = 56, R = 12, T = 12, B = 34;
  const cw = (W - L - R) / 24;
  const y = (v) => T + ((H - T - B) * (top - v)) / top;
  const parts = [`<svg class="chart" id="rides-by-hour" viewBox="0 0 ${W} ${H}" role="img" aria-label="Rides by hour, ${esc(city.code)}">`];
  for (let v = 0; v <= top; v += step) parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(v))}" y2="${r1(y(v))}" class="grid"/><text x="${L - 6}" y="${r1(y(v) + 4)}" class="tick" text-anchor="end">${int(v)}</text>`);
  for (let h = 0; h < 24; h++) {
    const g = byHour.get(h);
    const hh = String(h).padStart(2, '0');
    if (g) parts.push(`<rect x="${r1(L + h * cw + 2)}" y="${r1(y(g.rides))}" width="${r1(cw - 4)}" height="${r1(Math.max(y(0) - y(g.rides), 1))}" class="bar" data-hour="${hh}" data-rides="${g.rides}" data-riders="${g.riders}"><title>${esc(`${hh}:00–${hh}:59: ${int(g.rides)} rides by ${int(g.riders)} riders`)}</title></rect>`);
    if (h % 3 === 0) parts.push(`<text x="${r1(L + h * cw + cw / 2)}" y="${H - B + 16}" class="tick" text-anchor="middle">${hh}:00</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(0))}" y2="${r1(y(0))}" class="axis"/></svg>`);
  parts.push(`<p class="muted">Hours with fewer than ${minimum} riders are left out (no bar).</p>`);
  return parts.join('');
}

/** The top pairs by trips: a table with a bar in each row, transfers in another colour. */
function pairsTable(pairs, top) {
  if (!pairs.length) return '<p class="muted">No pair has enough riders to show.</p>';
  const shown = [...pairs].sort((a, b) => b.trips - a.trips || a.origin.localeCompare(b.origin) || a.destination.localeCompare(b.destination)).slice(0, top);
  const max = shown[0].trips;
  const rows = shown.map((p) => {
    const bar = `<svg class="spark" viewBox="0 0 200 14" role="img" aria-label="${esc(`${p.trips} trips`)}"><rect x="0" y="2" width="${r1((200 * p.trips) / max)}" height="10" class="${p.transfer ? 'transfer' : 'bar'}"/></svg>`;
    return `<tr data-origin="${esc(p.origin)}" data-destination="${esc(p.destination)}" data-trips="${p.trips}" data-riders="${p.riders}"><td>${esc(p.origin)}</td><td>${esc(p.destination)}</td><td>${p.transfer ? 'transfer' : 'along the line'}</td><td class="num">${int(p.trips)}</td><td class="num">${int(p.riders)}</td><td>${bar}</td></tr>`;
  });
  return `<table id="top-pairs"><thead><tr><th>from</th><th>to</th><th>kind</th><th class="num">trips</th><th class="num">riders</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const totalRides = ridership.groups.reduce((a, g) => a + g.rides, 0);
const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ridership ${esc(city.code)} ${esc(from)}${to === from ? '' : ` to ${esc(to)}`}</title>
<style>
  :root { color-scheme: light; --ink: #1d2733; --muted: #6b7785; --line: #dde3ea; --bar: #2e6fb7; --transfer: #e08a1e; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; color: var(--ink); margin: 0; background: #f5f7fa; }
  main { max-width: 1000px; margin: 0 auto; padding: 24px; } section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin: 18px 0; }
  h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 0 0 8px; } .muted { color: var(--muted); }
  table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; } th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; } .num { text-align: right; }
  svg.chart { width: 100%; height: auto; display: block; } svg.spark { width: 200px; height: 14px; }
  svg .grid { stroke: #e8ecf1; } svg .axis { stroke: #8a96a3; } svg .tick { font-size: 10px; fill: var(--muted); } svg .bar { fill: var(--bar); } svg .transfer { fill: var(--transfer); }
</style></head>
<body><main>
<h1>Ridership · ${esc(city.code)} ${esc(city.name)}</h1>
<p class="muted">${esc(from)}${to === from ? '' : ` to ${esc(to)}`}, local time (${esc(city.timeZone)}). Aggregates only: groups of fewer than ${ridership.minimumGroupSize} riders are left out (${ridership.suppressedGroups} hours, ${od.suppressedPairs} pairs).</p>
<section><h2>Rides by hour</h2>${hourChart(ridership.groups, ridership.minimumGroupSize)}</section>
<section><h2>Where riders go: the top ${Number(opts.top)} pairs by stop</h2><p class="muted">A rider’s next tap within ${window} minutes at another stop: along the line (a tap-in and tap-out) or a transfer to another line.</p>${pairsTable(od.pairs, Number(opts.top))}</section>
<section><h2>Files</h2><ul>${files.map((f) => `<li><a href="${esc(f)}">${esc(f)}</a></li>`).join('')}</ul></section>
</main></body></html>
`;
await fs.writeFile(path.join(outDir, 'ridership.html'), html);
const count = (n, what) => `${int(n)} ${what}${n === 1 ? '' : 's'}`;
console.log(`ridership ${city.code} ${from}${to === from ? '' : ` to ${to}`}: ${count(totalRides, 'ride')} shown by hour, ${count(od.pairs.length, 'pair')}; left out for too few riders: ${count(ridership.suppressedGroups, 'hour')}, ${count(od.suppressedPairs, 'pair')}`);
console.log(`report: ${path.join(outDir, 'ridership.html')}`);
