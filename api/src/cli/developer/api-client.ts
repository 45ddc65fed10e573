import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the developer commands read of demo.json (written by `npm start` and `onecard seed`). */
export interface DemoFile {
  publicUrl?: string;
  clients?: Record<string, { client_id: string; client_secret?: string | null; scope?: string; redirect_uri?: string }>;
  cardholders?: { username: string; password?: string }[];
  readers?: Record<string, { id: string; file: string; holder?: string }>;
  cards?: Record<string, { asn: string; file: string }>;
  registeredCards?: Record<string, { id: string; holder?: string }>;
  [key: string]: unknown;
}

/** Where the developer commands find demo.json: --demo, else $ONECARD_DATA_DIR/demo.json (default .onecard). */
export function demoFilePath(explicit?: string): string {
  return path.resolve(explicit ?? path.join(process.env.ONECARD_DATA_DIR || '.onecard', 'demo.json'));
}

export async function readDemoFile(file: string): Promise<DemoFile | undefined> {
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : (JSON.parse(text) as DemoFile);
}

/** How a developer command reaches OneCard: the API's base URL and one OAuth client's credentials. */
export interface ClientOptions {
  /** A demo client named in demo.json: merchant, biller, issuer, operator. */
  client?: string;
  clientId?: string;
  clientSecret?: string;
  api?: string;
  demo?: string;
  scope?: string;
}

export interface ResolvedClient {
  name: string;
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  scope: string;
}

/**
 * The credentials, first found wins: --client-id/--client-secret (or ONECARD_CLIENT_ID and
 * ONECARD_CLIENT_SECRET), else the demo client --client names in demo.json. The API is --api, else
 * ONECARD_API_URL, else demo.json's publicUrl. Errors say which option is missing.
 */
export async function resolveClient(opts: ClientOptions, defaultClient = 'merchant'): Promise<ResolvedClient> {
  const file = demoFilePath(opts.demo);
  const demo = await readDemoFile(file);
  const baseUrl = opts.api ?? process.env.ONECARD_API_URL ?? demo?.publicUrl;
  if (!baseUrl) throw new Error(`no API URL: give --api URL or ONECARD_API_URL${demo ? `, or restart \`npm start\` so ${file} gets publicUrl` : `, or run \`npm start\` (it writes ${file})`}`);
  const clientId = opts.clientId ?? process.env.ONECARD_CLIENT_ID;
  if (clientId) {
    const clientSecret = opts.clientSecret ?? process.env.ONECARD_CLIENT_SECRET;
    if (!clientSecret) throw new Error('--client-id needs --client-secret (or ONECARD_CLIENT_SECRET)');
    return { name: clientId, baseUrl, clientId, clientSecret, scope: opts.scope ?? '' };
  }
  return demoClient(demo, file, opts.client ?? defaultClient, baseUrl, opts.scope);
}

/** A demo client of demo.json by name (merchant, biller, issuer, operator): one with a client secret. */
export function demoClient(demo: DemoFile | undefined, file: string, name: string, baseUrl: string, scope?: string): ResolvedClient {
  if (!demo) throw new Error(`no ${file}: give --client-id and --client-secret, or --demo FILE, or run \`npm start\` first`);
  const found = demo.clients?.[name];
  const usable = Object.entries(demo.clients ?? {}).filter(([, c]) => c.client_secret).map(([n]) => n);
  if (!found) throw new Error(`no demo client "${name}" in ${file} (there: ${usable.join(', ') || 'none'})`);
  if (!found.client_secret) throw new Error(`demo client "${name}" has no client secret in ${file} (a cardholder app signs a person in; use one of ${usable.join(', ')})`);
  return { name, baseUrl, clientId: found.client_id, clientSecret: found.client_secret, scope: scope ?? found.scope ?? '' };
}

/** An error the API answered (GraphQL errors, or a refused token request), with its code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The client credentials grant (client_secret_basic) at the server's token endpoint: an access token and its lifetime. */
export async function clientCredentialsToken(client: ResolvedClient): Promise<{ accessToken: string; expiresIn: number }> {
  const baseUrl = client.baseUrl.replace(/\/+$/, '');
  const discovery = await fetch(`${baseUrl}/oauth/.well-known/openid-configuration`).catch((err: Error) => {
    throw new ApiError(`cannot reach ${baseUrl} (${(err.cause as { code?: string } | undefined)?.code ?? err.message}): is OneCard running there?`, 'UNREACHABLE');
  });
  if (!discovery.ok) throw new ApiError(`${baseUrl} answered ${discovery.status} to the OAuth discovery: is OneCard running there?`, 'DISCOVERY_FAILED');
  const { token_endpoint } = (await discovery.json()) as { token_endpoint: string };
  const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
  const res = await fetch(token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(client.scope ? { scope: client.scope } : {}) }),
  });
  const body = (await res.json()) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new ApiError(`the token endpoint refused ${client.name}: ${body.error ?? res.status}${body.error_description ? ` (${body.error_description})` : ''}`, 'TOKEN_REFUSED');
  return { accessToken: body.access_token, expiresIn: body.expires_in ?? 600 };
}

/**
 * A small GraphQL client over fetch for the developer commands, making the same calls an
 * integration makes, so the commands work against any OneCard, not only a local one. A client
 * credentials token is reused until a minute before it expires.
 */
export class ApiClient {
  private token?: { value: string; expiresAt: number };
  readonly baseUrl: string;
  /** Told how long a THROTTLED operation waits before it is sent again (the commands print it). */
  onThrottled: (seconds: number) => void = () => {};

  constructor(
    readonly name: string,
    baseUrl: string,
    private readonly newToken: () => Promise<{ accessToken: string; expiresIn: number }>,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  static forClient(client: ResolvedClient): ApiClient {
    return new ApiClient(client.name, client.baseUrl, () => clientCredentialsToken(client));
  }

  private async accessToken(): Promise<string> {
    if (this.token && Date.now() < this.token.expiresAt - 60_000) return this.token.value;
    const made = await this.newToken();
    this.token = { value: made.accessToken, expiresAt: Date.now() + made.expiresIn * 1000 };
    return made.accessToken;
  }

  /**
   * One GraphQL operation. A THROTTLED answer (the caller's cost bucket is short; nothing ran, so
   * sending it again is safe) is waited out for its Retry-After and sent again, up to 20 times.
   */
  async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${this.baseUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await this.accessToken()}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
      if (body.errors?.[0]?.extensions?.code === 'THROTTLED' && attempt < 20) {
        const seconds = Math.min(60, Math.max(1, Number(res.headers.get('retry-after')) || 1));
        this.onThrottled(seconds);
        await sleep(seconds * 1000);
        continue;
      }
      if (body.errors?.length) throw new ApiError(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; '), body.errors[0]!.extensions?.code ?? 'ERROR');
      return body.data as T;
    }
  }

  /** A mutation whose payload has userErrors: the payload, or an error listing them. */
  async mutate<T extends { userErrors: { code: string; message: string }[] }>(field: string, query: string, input: Record<string, unknown>): Promise<T> {
    const data = await this.request<Record<string, T>>(query, { input });
    const payload = data[field]!;
    if (payload.userErrors.length) throw new ApiError(`${field}: ${payload.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`, payload.userErrors[0]!.code);
    return payload;
  }
}
