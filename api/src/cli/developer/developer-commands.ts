import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { ApiClient, type ClientOptions, clientCredentialsToken, demoFilePath, resolveClient } from './api-client.js';
import { followEvents } from './event-feed.js';
import { listen, listenerSecret } from './listen.js';
import { trigger, triggerList } from './trigger.js';

/** How a long-running command learns it should stop: Ctrl-C (SIGINT) or SIGTERM, or a test's signal. */
export type StopSignal = () => AbortSignal;

export const stopOnSignals: StopSignal = () => {
  const controller = new AbortController();
  const stop = () => controller.abort();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, stop);
  controller.signal.addEventListener('abort', () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.off(signal, stop);
  });
  return controller.signal;
};

/** The API client of a long-running command, which says so when OneCard's cost limit makes it wait. */
async function apiFor(opts: ClientOptions): Promise<ApiClient> {
  const api = ApiClient.forClient(await resolveClient(opts));
  api.onThrottled = (seconds) => console.error(`throttled by OneCard's cost limit: waiting ${seconds} s`);
  return api;
}

/** The options every developer command takes to reach OneCard as one client. */
function withClientOptions(command: Command, defaultClient: string): Command {
  return command
    .option('--client <name>', `a demo client of demo.json: merchant, biller, issuer or operator (default ${defaultClient})`)
    .option('--client-id <id>', 'your OAuth client id instead (or ONECARD_CLIENT_ID)')
    .option('--client-secret <secret>', 'its secret (or ONECARD_CLIENT_SECRET)')
    .option('--api <url>', 'the OneCard base URL (or ONECARD_API_URL; default: demo.json publicUrl)')
    .option('--demo <file>', 'the demo.json to read (default $ONECARD_DATA_DIR/demo.json, ONECARD_DATA_DIR defaulting to .onecard)');
}

const eventTypes = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((t) => t.trim()).filter(Boolean)];

/** What the server sent, safe to print on a terminal: no control characters (escape sequences). */
function printable(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/**
 * The commands for a developer integrating with OneCard (docs/cli.md), as Stripe's CLI has them:
 * `token`, `listen --forward-to`, `trigger`, `events tail`. They use the public API only (OAuth and
 * GraphQL), so they work against any OneCard; `trigger` only against a sandbox.
 */
export function developerCommands(stop: StopSignal): Command[] {
  const token = withClientOptions(new Command('token'), 'merchant')
    .description('print an access token of a client (a demo client of demo.json by default), for curl or GraphiQL: Authorization: Bearer $(onecard token)')
    .option('--scope <scopes>', 'ask for fewer scopes than the client holds (space-separated)')
    .action(async (opts: ClientOptions) => {
      console.log((await clientCredentialsToken(await resolveClient(opts))).accessToken);
    });

  const triggerCommand = new Command('trigger')
    .description('make a real test event happen in a sandbox, by the flow that makes it happen in production, with the demo clients, readers and card of demo.json')
    .option('--api <url>', 'the OneCard base URL (or ONECARD_API_URL; default: demo.json publicUrl); a sandbox whose demo data demo.json holds')
    .option('--demo <file>', 'the demo.json to read (default $ONECARD_DATA_DIR/demo.json, ONECARD_DATA_DIR defaulting to .onecard)')
    .argument('<event>', 'the event type (below)')
    .addOption(new Option('--amount <fen>', 'the amount in minor units').default(100).argParser(positiveInt))
    .addHelpText('after', `\nEvents:\n${triggerList()}\n\nRefused in production (NODE_ENV=production here, or a server whose serverInfo.sandbox is false).`)
    .action(async (event: string, opts: { api?: string; demo?: string; amount: number }) => {
      const done = await trigger(event, { ...opts, note: (line) => console.log(`  ${line}`) });
      console.log(`Trigger succeeded: ${event} for ${done.subject}; the ${done.receivedBy} client receives it (onecard listen --client ${done.receivedBy})`);
    });

  const events = new Command('events').description("this client's events (the `events` query, scope events:read)");
  withClientOptions(events.command('tail'), 'merchant')
    .description('print events as they are published, one line each (time, type, id, subject); Ctrl-C stops')
    .option('--type <types>', 'only these event types, comma-separated (repeatable)', eventTypes)
    .option('--from-start', 'first print every earlier event')
    .option('--json', 'print each event as one line of JSON')
    .action(async (opts: ClientOptions & { type?: string[]; fromStart?: boolean; json?: boolean }) => {
      const api = await apiFor(opts);
      await followEvents(api, {
        types: opts.type,
        fromStart: opts.fromStart,
        signal: stop(),
        onReady: () => console.error(`Tailing ${opts.type?.length ? opts.type.join(', ') : 'every'} event of ${api.name} (${api.baseUrl}). Ctrl-C stops.`),
        onEvent: (e) => console.log(opts.json ? JSON.stringify(e) : `${e.created}  ${printable(e.type)}  ${e.id}  ${e.subject}`),
      });
    });

  const listenCommand = withClientOptions(new Command('listen'), 'merchant')
    .description(
      "forward this client's events to a local URL as signed webhook deliveries (the same body and onecard-signature header as OneCard's), one line per event with your answer; Ctrl-C stops",
    )
    .requiredOption('--forward-to <url>', 'where to POST each event, e.g. http://localhost:3000/hooks/onecard')
    .option('--events <types>', 'only these event types, comma-separated (repeatable)', eventTypes)
    .option('--secret <whsec>', 'sign with this secret, e.g. your endpoint’s (or ONECARD_WEBHOOK_SECRET); default: a listener secret kept beside demo.json, printed at start')
    .action(async (opts: ClientOptions & { forwardTo: string; events?: string[]; secret?: string }) => {
      let url: URL;
      try {
        url = new URL(opts.forwardTo);
      } catch {
        throw new Error(`--forward-to: not a URL: ${opts.forwardTo}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('--forward-to: an http:// or https:// URL');
      const api = await apiFor(opts);
      const given = opts.secret ?? process.env.ONECARD_WEBHOOK_SECRET;
      const secret = given ?? (await listenerSecret(path.dirname(demoFilePath(opts.demo))));
      if (!given) console.log(`Your webhook signing secret is ${secret} (kept in ${path.join(path.dirname(demoFilePath(opts.demo)), 'listen-secret')})`);
      await listen(api, { forwardTo: url.href, secret, types: opts.events, signal: stop(), print: (line) => console.log(line) });
    });

  return [token, listenCommand, triggerCommand, events];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('Expected a positive whole number of minor units.');
  return n;
}
