import pg from 'pg';
import type { Logger } from 'pino';

/** How long to wait before listening again after the listening connection was lost. */
const RELISTEN_DELAY_MS = 1_000;

/**
 * One PostgreSQL channel listened to on a connection of its own (LISTEN/NOTIFY): how a cache in
 * one API process learns at once that another process (or anything else) changed what it keeps.
 * `live` is true only while the connection listens; whoever keeps a cache must not serve from it
 * otherwise, since notifications sent meanwhile are lost. Each notice and each loss of the
 * connection calls `onChange`, so the cache is emptied in both cases.
 */
export class ChangeNotices {
  private client: pg.Client | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  live = false;

  constructor(
    private readonly opts: { databaseUrl: string; channel: string; onChange: () => void; log?: Logger },
  ) {}

  /** Starts listening; resolves once listening (or once the first attempt failed: it retries). */
  async start(): Promise<void> {
    if (this.closed || this.client) return;
    const client = new pg.Client({ connectionString: this.opts.databaseUrl });
    this.client = client;
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      this.live = false;
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
      this.live = true;
    } catch (err) {
      lost(err as Error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
