import pg from 'pg';
import type { Logger } from 'pino';

/** How long to wait before listening again after the listening connection was lost. */
const RELISTEN_DELAY_MS = 1_000;
/** How often the listening connection is asked to answer, and how long it may stay silent before it counts as lost. */
const HEARTBEAT = { everyMs: 2_000, silenceMs: 5_000 };

/**
 * One PostgreSQL channel listened to on a connection of its own (LISTEN/NOTIFY): how a cache in
 * one API process learns at once that another process (or anything else) changed what it keeps.
 * `live` is true only while the connection listens and has answered lately (it is asked every few
 * seconds: a connection can die without a word); whoever keeps a cache must not serve from it
 * otherwise, since notifications sent meanwhile are lost. Each notice and each loss of the
 * connection calls `onChange`, so the cache is emptied in both cases.
 */
export class ChangeNotices {
  private client: pg.Client | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private listening = false;
  /** When the connection last answered: a connection can die without a word (no FIN, no RST), and then every notice is lost. */
  private heardAt = 0;

  constructor(
    private readonly opts: { databaseUrl: string; channel: string; onChange: () => void; log?: Logger; heartbeat?: { everyMs: number; silenceMs: number } },
  ) {}

  private get beat() {
    return this.opts.heartbeat ?? HEARTBEAT;
  }

  /** Listening, and heard from lately: only then may a cache serve what it keeps. */
  get live(): boolean {
    return this.listening && Date.now() - this.heardAt <= this.beat.silenceMs;
  }

  /** Starts listening; resolves once listening (or once the first attempt failed: it retries). */
  async start(): Promise<void> {
    if (this.closed || this.client) return;
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, keepAlive: true, connectionTimeoutMillis: this.beat.silenceMs });
    this.client = client;
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.listening = false;
      clearInterval(this.heartbeat);
      this.opts.onChange();
      client.removeAllListeners();
      client.on('error', () => {}); // a late error of the dead connection
      client.end().catch(() => {});
      if (this.closed) return;
      this.opts.log?.warn({ err, channel: this.opts.channel }, 'lost the change-notice connection; caches are bypassed until it listens again');
      this.timer = setTimeout(() => void this.start(), RELISTEN_DELAY_MS);
      this.timer.unref();
    };
    client.on('notification', (n) => {
      this.heardAt = Date.now();
      if (n.channel === this.opts.channel) this.opts.onChange();
    });
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`listen ${pg.escapeIdentifier(this.opts.channel)}`);
      if (this.client !== client) return;
      // Whatever was kept before now may have changed while nobody listened.
      this.opts.onChange();
      this.heardAt = Date.now();
      this.listening = true;
      let pinging = false;
      this.heartbeat = setInterval(() => {
        if (Date.now() - this.heardAt > this.beat.silenceMs) return lost(new Error(`the listening connection has not answered for ${this.beat.silenceMs} ms`));
        if (pinging) return;
        pinging = true;
        client
          .query('select 1')
          .then(() => {
            if (this.client === client) this.heardAt = Date.now();
          })
          .catch(() => {}) // a failed connection reports itself through 'error' or 'end'
          .finally(() => (pinging = false));
      }, this.beat.everyMs);
      this.heartbeat.unref();
    } catch (err) {
      lost(err as Error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
