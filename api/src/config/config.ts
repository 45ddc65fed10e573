import path from 'node:path';

/** Everything the platform reads from its environment, validated once at start. */
export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  /** Host the HTTP server binds to. */
  host: string;
  /** Base of every link we hand out and, later, of the OAuth issuer. No trailing slash. */
  publicUrl: string;
  /** Set: use this PostgreSQL and start no embedded one. */
  databaseUrl: string | undefined;
  /**
   * WEB_CONCURRENCY: API worker processes (node:cluster) sharing the port; 1 (the default) serves
   * from the one process. With more, the first process keeps the database, the sandbox gateway and
   * the background jobs, and only serves through its workers.
   */
  webConcurrency: number;
  /** Holds the embedded PostgreSQL (`pg/`) and `demo.json`. */
  dataDir: string;
  /** Port of the embedded PostgreSQL; 0 picks a free one at each start. */
  embeddedPgPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Turns introspection and field suggestions off. Defaults to on outside production. */
  introspection: boolean;
  /**
   * Encrypts the OAuth signing keys at rest (AES-256-GCM). Unset outside production: a key is
   * made once and kept in `$ONECARD_DATA_DIR/key-encryption-key` (see auth/keys.ts).
   */
  keyEncryptionKey: Buffer | undefined;
  /**
   * A PKCS#11 HSM for card master keys (ONECARD_PKCS11_MODULE, ONECARD_PKCS11_TOKEN, ONECARD_PKCS11_PIN,
   * all three or none): 3DES master keys are imported into it and never leave it (docs/cardcrypto.md).
   * Unset: master keys are sealed with the key-encryption key in the database.
   */
  pkcs11: { module: string; tokenLabel: string; pin: string } | undefined;
  /** Behind a TLS-terminating proxy: trust its X-Forwarded-* headers. Off by default. */
  trustProxy: boolean;
  /**
   * The payment gateway (a Stripe-like API). Unset outside production: the platform starts its own
   * sandbox gateway on a local port (topups/sandbox-gateway.ts) with secrets made at start.
   */
  gateway: { url: string; secretKey: string; webhookSecret: string; timeoutMs?: number } | undefined;
  /** Top-up limits in minor units of the card's currency (docs/topups.md). */
  topUpLimits: TopUpLimits;
  /** How long after a replacement the old card's balance moves to the new one: offline spending arrives in between. */
  balanceTransferDelaySeconds: number;
  /** `HH:MM` after local midnight when the previous business day's settlement windows close (SETTLEMENT_CUTOFF). */
  settlementCutoff: string;
  /** Seed the demo data (ONECARD_DEMO): on by default outside production, never silently in production. */
  demoData: boolean;
  /**
   * The GraphQL cost bucket of each client (docs/security.md#rate-limits-graphql-cost): its size in
   * cost points (GRAPHQL_COST_BUCKET, default 10,000: two operations at the cost limit) and the points
   * it regains each second (GRAPHQL_COST_RESTORE_RATE, default 500: empty to full in 20 s).
   */
  costThrottle: { maximumAvailable: number; restoreRate: number };
  /** Bounds of the HTTP server against slow and idle clients (docs/security.md#http-limits). */
  http: HttpLimits;
  /** Back-off after failed client authentications and sign-ins (docs/security.md#throttling-of-sign-in-and-token-requests). */
  authThrottle: AuthThrottleSettings;
  /** In production /metrics answers only `Authorization: Bearer <this>`; unset there, it is off (METRICS_TOKEN). */
  metricsToken: string | undefined;
  /**
   * Which internal addresses webhook and bill look-up URLs may name (ALLOW_INTERNAL_URLS): `none`
   * (production, always), `loopback` (the default elsewhere: receivers on the developer's own
   * machine), `all` (private ranges and link-local too: an explicit opt-in, never in production).
   */
  internalUrls: 'none' | 'loopback' | 'all';
  /**
   * ONECARD_TEST_CRASH_PROBABILITY: the chance (0 to 1) that the process kills itself (SIGKILL) at
   * each crash point (graphql/crash-point.ts), for the chaos test. Only with NODE_ENV=test; 0 otherwise.
   */
  testCrashProbability: number;
  /**
   * GATEWAY_SANDBOX_PORT: where the sandbox gateway listens when GATEWAY_URL is unset. Fixed (4010 by
   * default; 0 under NODE_ENV=test, a free one) so that its checkout links outlive a restart.
   */
  sandboxGatewayPort: number;
}

export interface HttpLimits {
  /** Time to receive a request's headers, counted from the connection or the previous response. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body: a trickled body is cut at this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all, in either direction, is closed after this. */
  idleTimeoutMs: number;
  /** Connections over this many are closed as they arrive. */
  maxConnections: number;
}

/** One throttle: so many failures are free, then a back-off that doubles up to a ceiling. */
export interface ThrottleRule {
  freeFailures: number;
  firstBackoffSeconds: number;
  maxBackoffSeconds: number;
}

export interface AuthThrottleSettings {
  signInPerAccount: ThrottleRule;
  signInPerIp: ThrottleRule;
  tokenPerClient: ThrottleRule;
  tokenPerIp: ThrottleRule;
  /** Failures older than this are forgotten. */
  forgetAfterSeconds: number;
}

export interface TopUpLimits {
  /** The most a card's purse may hold, counting paid top-ups not yet loaded. */
  purseMax: bigint;
  /** The smallest and largest single top-up. */
  min: bigint;
  max: bigint;
  /** The most one card may be topped up in a calendar day of its city. */
  dailyMax: bigint;
}

/** A setting that is wrong: names the variable and says what is expected. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new ConfigError(name, 'a TCP port number from 0 to 65535', raw);
  return Number(raw);
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(name, `one of ${allowed.join(', ')}`, raw);
  return raw as T;
}

function url(env: NodeJS.ProcessEnv, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `a URL (${protocols.join(' or ')})`, raw);
  }
  if (!protocols.includes(parsed.protocol)) throw new ConfigError(name, `a URL (${protocols.join(' or ')})`, raw);
  return raw;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function keyEncryptionKey(env: NodeJS.ProcessEnv, nodeEnv: Config['env']): Buffer | undefined {
  const name = 'ONECARD_KEY_ENCRYPTION_KEY';
  const raw = env[name];
  const expected = '32 random bytes in base64url (e.g. `openssl rand -base64 32 | tr +/ -_ | tr -d =`)';
  if (raw === undefined || raw === '') {
    if (nodeEnv === 'production') throw new ConfigError(name, `${expected}; it is required in production`, '');
    return undefined;
  }
  const key = Buffer.from(raw, 'base64url');
  if (key.length !== 32) throw new ConfigError(name, expected, `${key.length} bytes`);
  return key;
}

function pkcs11(env: NodeJS.ProcessEnv): Config['pkcs11'] {
  const names = ['ONECARD_PKCS11_MODULE', 'ONECARD_PKCS11_TOKEN', 'ONECARD_PKCS11_PIN'] as const;
  const [module, tokenLabel, pin] = names.map((n) => env[n] || undefined);
  if (!module && !tokenLabel && !pin) return undefined;
  const missing = names.filter((n) => !env[n]);
  if (missing.length) throw new ConfigError(missing[0]!, 'set with the other ONECARD_PKCS11_* variables (the library, the token label, the user PIN)', '');
  return { module: module!, tokenLabel: tokenLabel!, pin: pin! };
}

function minorUnits(env: NodeJS.ProcessEnv, name: string, fallback: bigint): bigint {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new ConfigError(name, 'a positive whole number of minor units (fen)', raw);
  return BigInt(raw);
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, unit: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]{1,9}$/.test(raw)) throw new ConfigError(name, `a whole number of ${unit}`, raw);
  return Number(raw);
}

function webConcurrency(env: NodeJS.ProcessEnv): number {
  const n = wholeNumber(env, 'WEB_CONCURRENCY', 1, 'worker processes');
  if (n < 1 || n > 64) throw new ConfigError('WEB_CONCURRENCY', 'a number of API worker processes from 1 to 64', String(n));
  return n;
}

/** `HH:MM`, 24-hour. */
function timeOfDay(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(raw)) throw new ConfigError(name, 'a time of day HH:MM (24-hour)', raw);
  return raw;
}

function gateway(env: NodeJS.ProcessEnv, nodeEnv: Config['env']): Config['gateway'] {
  const gatewayUrl = url(env, 'GATEWAY_URL', ['http:', 'https:']);
  if (!gatewayUrl) {
    if (nodeEnv === 'production') throw new ConfigError('GATEWAY_URL', 'the payment gateway’s base URL; it is required in production', '');
    return undefined;
  }
  const secretKey = env.GATEWAY_SECRET_KEY ?? '';
  const webhookSecret = env.GATEWAY_WEBHOOK_SECRET ?? '';
  if (!secretKey) throw new ConfigError('GATEWAY_SECRET_KEY', 'the gateway secret key (with GATEWAY_URL)', '');
  if (webhookSecret.length < 16) throw new ConfigError('GATEWAY_WEBHOOK_SECRET', 'the gateway webhook signing secret, 16 characters or more (with GATEWAY_URL)', webhookSecret ? `${webhookSecret.length} characters` : '');
  const timeoutMs = wholeNumber(env, 'GATEWAY_TIMEOUT_MS', 10_000, 'milliseconds');
  return { url: gatewayUrl.replace(/\/+$/, ''), secretKey, webhookSecret, timeoutMs };
}

const PURSE_CAPACITY = 2n ** 31n - 1n;

function topUpLimits(env: NodeJS.ProcessEnv): TopUpLimits {
  const limits = {
    purseMax: minorUnits(env, 'TOPUP_PURSE_MAX', 100_000n),
    min: minorUnits(env, 'TOPUP_MIN', 100n),
    max: minorUnits(env, 'TOPUP_MAX', 100_000n),
    dailyMax: minorUnits(env, 'TOPUP_DAILY_MAX', 200_000n),
  };
  if (limits.min > limits.max) throw new ConfigError('TOPUP_MIN', `at most TOPUP_MAX (${limits.max})`, String(limits.min));
  // What a chip can hold: a CPU purse's balance is 4 bytes unsigned, an M1 value block a signed 32-bit number.
  if (limits.purseMax > PURSE_CAPACITY) throw new ConfigError('TOPUP_PURSE_MAX', `at most ${PURSE_CAPACITY} (what an M1 card's value block can hold)`, String(limits.purseMax));
  return limits;
}

function costThrottle(env: NodeJS.ProcessEnv): Config['costThrottle'] {
  const maximumAvailable = wholeNumber(env, 'GRAPHQL_COST_BUCKET', 10_000, 'cost points');
  const restoreRate = wholeNumber(env, 'GRAPHQL_COST_RESTORE_RATE', 500, 'cost points a second');
  if (maximumAvailable < 1) throw new ConfigError('GRAPHQL_COST_BUCKET', 'at least 1 cost point', String(maximumAvailable));
  if (restoreRate < 1) throw new ConfigError('GRAPHQL_COST_RESTORE_RATE', 'at least 1 cost point a second', String(restoreRate));
  return { maximumAvailable, restoreRate };
}

function httpLimits(env: NodeJS.ProcessEnv): HttpLimits {
  const limits = {
    headersTimeoutMs: wholeNumber(env, 'HTTP_HEADERS_TIMEOUT_MS', 10_000, 'milliseconds'),
    requestTimeoutMs: wholeNumber(env, 'HTTP_REQUEST_TIMEOUT_MS', 60_000, 'milliseconds'),
    keepAliveTimeoutMs: wholeNumber(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', 65_000, 'milliseconds'),
    idleTimeoutMs: wholeNumber(env, 'HTTP_IDLE_TIMEOUT_MS', 120_000, 'milliseconds'),
    maxConnections: wholeNumber(env, 'HTTP_MAX_CONNECTIONS', 1024, 'connections'),
  };
  // Zero would mean "no limit" to Node: that is the hole these settings close.
  for (const [name, value] of [['HTTP_HEADERS_TIMEOUT_MS', limits.headersTimeoutMs], ['HTTP_REQUEST_TIMEOUT_MS', limits.requestTimeoutMs], ['HTTP_KEEP_ALIVE_TIMEOUT_MS', limits.keepAliveTimeoutMs], ['HTTP_IDLE_TIMEOUT_MS', limits.idleTimeoutMs], ['HTTP_MAX_CONNECTIONS', limits.maxConnections]] as const) {
    if (value === 0) throw new ConfigError(name, 'more than 0', '0');
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) throw new ConfigError('HTTP_HEADERS_TIMEOUT_MS', `at most HTTP_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`, String(limits.headersTimeoutMs));
  if (limits.keepAliveTimeoutMs > 300_000) throw new ConfigError('HTTP_KEEP_ALIVE_TIMEOUT_MS', 'at most 300000 (5 minutes)', String(limits.keepAliveTimeoutMs));
  return limits;
}

function throttleRule(env: NodeJS.ProcessEnv, prefix: string, fallback: ThrottleRule): ThrottleRule {
  const rule = {
    freeFailures: wholeNumber(env, `${prefix}_FAILURES`, fallback.freeFailures, 'failures'),
    firstBackoffSeconds: wholeNumber(env, `${prefix}_BACKOFF_SECONDS`, fallback.firstBackoffSeconds, 'seconds'),
    maxBackoffSeconds: wholeNumber(env, `${prefix}_MAX_BACKOFF_SECONDS`, fallback.maxBackoffSeconds, 'seconds'),
  };
  if (rule.firstBackoffSeconds === 0) throw new ConfigError(`${prefix}_BACKOFF_SECONDS`, 'more than 0', '0');
  if (rule.maxBackoffSeconds < rule.firstBackoffSeconds) throw new ConfigError(`${prefix}_MAX_BACKOFF_SECONDS`, `at least ${prefix}_BACKOFF_SECONDS (${rule.firstBackoffSeconds})`, String(rule.maxBackoffSeconds));
  return rule;
}

function authThrottle(env: NodeJS.ProcessEnv): AuthThrottleSettings {
  return {
    signInPerAccount: throttleRule(env, 'SIGNIN_THROTTLE_ACCOUNT', { freeFailures: 5, firstBackoffSeconds: 30, maxBackoffSeconds: 900 }),
    signInPerIp: throttleRule(env, 'SIGNIN_THROTTLE_IP', { freeFailures: 50, firstBackoffSeconds: 60, maxBackoffSeconds: 3600 }),
    tokenPerClient: throttleRule(env, 'TOKEN_THROTTLE_CLIENT', { freeFailures: 10, firstBackoffSeconds: 30, maxBackoffSeconds: 900 }),
    tokenPerIp: throttleRule(env, 'TOKEN_THROTTLE_IP', { freeFailures: 50, firstBackoffSeconds: 60, maxBackoffSeconds: 3600 }),
    forgetAfterSeconds: wholeNumber(env, 'AUTH_THROTTLE_FORGET_SECONDS', 24 * 3600, 'seconds'),
  };
}

function metricsToken(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.METRICS_TOKEN;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 16) throw new ConfigError('METRICS_TOKEN', 'a bearer token of 16 characters or more', `${raw.length} characters`);
  return raw;
}

function internalUrls(env: NodeJS.ProcessEnv, nodeEnv: Config['env']): Config['internalUrls'] {
  const setting = oneOf(env, 'ALLOW_INTERNAL_URLS', ['none', 'loopback', 'all'] as const, nodeEnv === 'production' ? 'none' : 'loopback');
  if (setting !== 'none' && nodeEnv === 'production') throw new ConfigError('ALLOW_INTERNAL_URLS', 'none in production (webhooks and look-ups never go to internal addresses there)', setting);
  return setting;
}

function testCrashProbability(env: NodeJS.ProcessEnv, nodeEnv: Config['env']): number {
  const name = 'ONECARD_TEST_CRASH_PROBABILITY';
  const raw = env[name];
  if (raw === undefined || raw === '') return 0;
  if (nodeEnv !== 'test') throw new ConfigError(name, 'nothing outside NODE_ENV=test (it makes the process kill itself, for the chaos test)', raw);
  if (!/^(0(\.[0-9]+)?|1(\.0+)?)$/.test(raw)) throw new ConfigError(name, 'a probability from 0 to 1', raw);
  return Number(raw);
}

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  const listenPort = port(env, 'PORT', 4000);
  const publicUrl = (url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${listenPort}`).replace(/\/+$/, '');
  return {
    env: nodeEnv,
    port: listenPort,
    host: env.HOST || '0.0.0.0',
    publicUrl,
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    webConcurrency: webConcurrency(env),
    dataDir: path.resolve(cwd, env.ONECARD_DATA_DIR || '.onecard'),
    embeddedPgPort: port(env, 'ONECARD_PG_PORT', 0),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, nodeEnv === 'test' ? 'silent' : 'info'),
    introspection: bool(env, 'GRAPHQL_INTROSPECTION', nodeEnv !== 'production'),
    keyEncryptionKey: keyEncryptionKey(env, nodeEnv),
    pkcs11: pkcs11(env),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    gateway: gateway(env, nodeEnv),
    topUpLimits: topUpLimits(env),
    balanceTransferDelaySeconds: wholeNumber(env, 'CARD_BALANCE_TRANSFER_DELAY', 7 * 24 * 3600, 'seconds'),
    settlementCutoff: timeOfDay(env, 'SETTLEMENT_CUTOFF', '02:00'),
    demoData: bool(env, 'ONECARD_DEMO', nodeEnv !== 'production'),
    costThrottle: costThrottle(env),
    http: httpLimits(env),
    authThrottle: authThrottle(env),
    metricsToken: metricsToken(env),
    internalUrls: internalUrls(env, nodeEnv),
    testCrashProbability: testCrashProbability(env, nodeEnv),
    sandboxGatewayPort: port(env, 'GATEWAY_SANDBOX_PORT', nodeEnv === 'test' ? 0 : 4010),
  };
}
