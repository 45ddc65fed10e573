import type { MikroORM } from '@mikro-orm/postgresql';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { findClient, providerMetadata } from './clients.service.js';

/**
 * oidc-provider's storage in our PostgreSQL (one `oidc_payload` table keyed by model and id), so
 * that any number of API processes share grants, codes, tokens and sessions. Clients come from
 * `oauth_client`, which the client mutations and the CLI write.
 */
export function postgresAdapter(orm: MikroORM): new (model: string) => Adapter {
  return class PostgresAdapter implements Adapter {
    constructor(private readonly model: string) {}

    private get em() {
      return orm.em.fork();
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      await this.em.execute(
        `insert into oidc_payload (id, kind, payload, grant_id, user_code, uid, expires_at)
         values (?, ?, ?, ?, ?, ?, case when ?::int > 0 then now() + make_interval(secs => ?::int) end)
         on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
           user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`,
        [id, this.model, JSON.stringify(payload), payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresIn ?? 0, expiresIn ?? 0],
      );
    }

    private async findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
      const [row] = await this.em.execute<{ payload: AdapterPayload; consumed_at: Date | null }[]>(
        `select payload, consumed_at from oidc_payload
          where kind = ? and ${column} = ? and (expires_at is null or expires_at > now())`,
        [this.model, value],
      );
      if (!row) return undefined;
      return { ...row.payload, ...(row.consumed_at ? { consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) } : {}) };
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') {
        const client = await findClient(this.em, id);
        return client && !client.disabled ? (providerMetadata(client) as AdapterPayload) : undefined;
      }
      return this.findWhere('id', id);
    }

    findByUid(uid: string) {
      return this.findWhere('uid', uid);
    }

    findByUserCode(userCode: string) {
      return this.findWhere('user_code', userCode);
    }

    async consume(id: string): Promise<void> {
      await this.em.execute(`update oidc_payload set consumed_at = now() where kind = ? and id = ?`, [this.model, id]);
    }

    async destroy(id: string): Promise<void> {
      await this.em.execute(`delete from oidc_payload where kind = ? and id = ?`, [this.model, id]);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await this.em.execute(`delete from oidc_payload where grant_id = ?`, [grantId]);
    }
  };
}
