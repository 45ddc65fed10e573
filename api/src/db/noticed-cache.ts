import type { Logger } from 'pino';
import { ChangeNotices } from './change-notices.js';

/** Far more entries than an installation has cities, card companies and key versions. */
const MAX_ENTRIES = 10_000;

/**
 * Rows that change rarely and matter at once when they do (a host key retired, a card master key
 * retired, a card profile changed), read once per process and kept until a change notice says
 * something they come from changed (LISTEN/NOTIFY, change-notices.ts: triggers notify at commit,
 * whatever wrote). Every notice empties the whole cache: changes are rare, reads are cheap to redo.
 * Nothing is served while the listening connection is down or silent (notices may be lost then),
 * and a read that started before a notice is not kept after it (the generation), so a read racing
 * a retirement cannot put the retired row back. The token-status cache (auth/) is one too.
 */
export class NoticedCache {
  private readonly entries = new Map<string, unknown>();
  private generation = 0;
  private readonly notices: ChangeNotices;
  private readonly maxEntries: number;

  constructor(opts: { databaseUrl: string; channel: string; log?: Logger; maxEntries?: number; heartbeat?: { everyMs: number; silenceMs: number } }) {
    this.maxEntries = opts.maxEntries ?? MAX_ENTRIES;
    this.notices = new ChangeNotices({ databaseUrl: opts.databaseUrl, channel: opts.channel, log: opts.log, heartbeat: opts.heartbeat, onChange: () => this.clear() });
  }

  start(): Promise<void> {
    return this.notices.start();
  }

  close(): Promise<void> {
    return this.notices.close();
  }

  get size(): number {
    return this.entries.size;
  }

  private clear(): void {
    this.generation++;
    this.entries.clear();
  }

  /**
   * What `key` holds, from the cache or from `read`; kept when `keep` says so (not a row this
   * request wrote itself, which its transaction may roll back) and nothing changed meanwhile.
   */
  async get<T>(key: string, read: () => Promise<{ value: T; keep: boolean }>): Promise<T> {
    if (this.notices.live && this.entries.has(key)) return this.entries.get(key) as T;
    const generation = this.generation;
    const { value, keep } = await read();
    if (keep && this.notices.live && generation === this.generation) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
    }
    return value;
  }
}
