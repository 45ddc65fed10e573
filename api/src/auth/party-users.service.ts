import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { hashPassword, NO_SUCH_USER_HASH, passwordMatches } from './cardholders.service.js';

/**
 * A person of a merchant, biller, card company or the operator who signs in to the web console.
 * They sign in through one sign-in client of their party (a public client: code + PKCE), and the
 * token is that client's: its kind and tenant make the principal, so a clerk sees what the party's
 * back end sees and no more. `sub` names the person, for the audit trail.
 */
export interface PartyUser {
  id: string;
  clientId: string;
  username: string;
  displayName: string;
}

interface PartyUserRow {
  id: string;
  client_id: string;
  username: string;
  display_name: string;
  password_hash: string;
}

const view = (row: PartyUserRow): PartyUser => ({ id: row.id, clientId: row.client_id, username: row.username, displayName: row.display_name });

export async function createPartyUser(em: EntityManager, input: { clientId: string; username: string; password: string; displayName: string }): Promise<PartyUser> {
  const id = randomUUID();
  await em.execute(`insert into party_user (id, client_id, username, password_hash, display_name) values (?, ?, ?, ?, ?)`, [
    id,
    input.clientId,
    input.username,
    await hashPassword(input.password),
    input.displayName,
  ]);
  return { id, clientId: input.clientId, username: input.username, displayName: input.displayName };
}

/**
 * The user for these credentials signing in through `clientId`, or undefined. A user of another
 * party (or another client of the same party) is refused like a wrong password; the scrypt work is
 * the same in every case, so the answer's timing tells nothing.
 */
export async function authenticatePartyUser(em: EntityManager, clientId: string, username: string, password: string): Promise<PartyUser | undefined> {
  const [row] = await em.execute<PartyUserRow[]>(`select * from party_user where username = ?`, [username]);
  const ok = await passwordMatches(password, row?.password_hash ?? NO_SUCH_USER_HASH);
  return row && ok && row.client_id === clientId ? view(row) : undefined;
}

export async function findPartyUser(em: EntityManager, id: string): Promise<PartyUser | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
  const [row] = await em.execute<PartyUserRow[]>(`select * from party_user where id = ?`, [id]);
  return row && view(row);
}

/**
 * Whether the signed-in account may sign in through this client: a cardholder through a cardholder
 * app, a party's user through its own sign-in client only (auth/provider.ts asks for a new login otherwise).
 */
export async function accountMayUseClient(em: EntityManager, accountId: string, clientId: string): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/.test(accountId)) return false;
  const [row] = await em.execute<{ ok: boolean }[]>(
    `select case when c.kind = 'CARDHOLDER_APP' then exists (select 1 from cardholder h where h.id = ?)
                 else exists (select 1 from party_user u where u.id = ? and u.client_id = c.client_id) end as ok
       from oauth_client c where c.client_id = ?`,
    [accountId, accountId, clientId],
  );
  return row?.ok === true;
}
