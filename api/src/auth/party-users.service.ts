import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { DomainError } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { hashPassword, NO_SUCH_USER_HASH, passwordMatches } from './cardholders.service.js';
import { findClient, type OAuthClientRow } from './clients.service.js';
import type { PrincipalKind } from './principal.js';

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
  /** May make the party's other users (createPartyUser through the party's own sign-in). */
  admin: boolean;
  /** Made with an initial password: the first sign-in asks for their own before anything else. */
  mustChangePassword: boolean;
  createdAt: Date;
}

interface PartyUserRow {
  id: string;
  client_id: string;
  username: string;
  display_name: string;
  password_hash: string;
  admin: boolean;
  must_change_password: boolean;
  created_at: Date;
}

const view = (row: PartyUserRow): PartyUser => ({
  id: row.id,
  clientId: row.client_id,
  username: row.username,
  displayName: row.display_name,
  admin: row.admin,
  mustChangePassword: row.must_change_password,
  createdAt: row.created_at,
});

export type PartyUserErrorCode = 'NO_SUCH_SIGN_IN_CLIENT' | 'NOT_AN_ADMIN' | 'INVALID_USERNAME' | 'INVALID_DISPLAY_NAME' | 'USERNAME_TAKEN';

const USER_ERROR_CODE: Record<PartyUserErrorCode, UserErrorCode> = {
  NO_SUCH_SIGN_IN_CLIENT: UserErrorCode.NOT_FOUND,
  NOT_AN_ADMIN: UserErrorCode.FORBIDDEN_OPERATION,
  INVALID_USERNAME: UserErrorCode.INVALID_INPUT,
  INVALID_DISPLAY_NAME: UserErrorCode.INVALID_INPUT,
  USERNAME_TAKEN: UserErrorCode.DUPLICATE_NAME,
};

/** A party user not made (createPartyUser answers it as a userError; the CLI prints it). */
export class PartyUserError extends DomainError<PartyUserErrorCode> {
  constructor(code: PartyUserErrorCode, message: string, field?: string) {
    super(code, message, USER_ERROR_CODE[code], field);
  }
}

/** User names people can type and read back over the phone: letters, digits, `.`, `_`, `-`, `@`. */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/;
/** Initial passwords are 120 random bits, shown once; people choose theirs (at least this long) at the first sign-in. */
export const MIN_PASSWORD_LENGTH = 12;

/** Inserts the row; undefined when the user name is taken (one statement: no race between check and insert). */
async function insertPartyUser(em: EntityManager, input: { clientId: string; username: string; password: string; displayName: string; admin: boolean; mustChangePassword: boolean }): Promise<PartyUser | undefined> {
  const [row] = await em.execute<PartyUserRow[]>(
    `insert into party_user (id, client_id, username, password_hash, display_name, admin, must_change_password) values (?, ?, ?, ?, ?, ?, ?)
     on conflict (username) do nothing returning *`,
    [randomUUID(), input.clientId, input.username, await hashPassword(input.password), input.displayName, input.admin, input.mustChangePassword],
  );
  return row && view(row);
}

/** A user whose password is already chosen (the demo seed, tests). */
export async function createPartyUser(em: EntityManager, input: { clientId: string; username: string; password: string; displayName: string; admin?: boolean }): Promise<PartyUser> {
  const user = await insertPartyUser(em, { ...input, admin: input.admin ?? false, mustChangePassword: false });
  if (!user) throw new PartyUserError('USERNAME_TAKEN', `the user name ${input.username} is taken`, 'username');
  return user;
}

/** Who asks for a new user: the operator, or a party's person signed in through the party's sign-in client. */
export interface PartyUserActor {
  kind: PrincipalKind;
  tenantId: string | null;
  /** The party user the token names (its `sub`); none for a back end's client-credentials token. */
  userId?: string | null;
}

/** A party's sign-in client for the console: not a cardholder app, public (PKCE), with redirect URIs. */
const isSignInClient = (c: OAuthClientRow | undefined): c is OAuthClientRow => !!c && c.kind !== 'CARDHOLDER_APP' && c.auth_method === 'none' && c.redirect_uris.length > 0;
const sameParty = (c: OAuthClientRow, kind: PrincipalKind, tenantId: string | null) => c.kind === kind && c.tenant_id === tenantId;

/**
 * Makes a user of the party whose sign-in client `clientId` is, with an initial password shown once
 * (only its hash is kept) that the user must replace at the first sign-in. The operator makes users
 * for any party; a party's admin user, signed in to the console, for its own party only (another
 * party's client is answered as not found, so nothing about it leaks). A back end's token names no
 * person, so it is no admin.
 */
export async function createPartyUserAs(
  em: EntityManager,
  actor: PartyUserActor,
  input: { clientId: string; username: string; displayName: string; admin: boolean },
): Promise<{ user: PartyUser; initialPassword: string }> {
  if (actor.kind !== 'OPERATOR') {
    const me = actor.userId ? await findPartyUser(em, actor.userId) : undefined;
    const mine = me && (await findClient(em, me.clientId));
    if (!me?.admin || !mine || !sameParty(mine, actor.kind, actor.tenantId)) throw new PartyUserError('NOT_AN_ADMIN', 'only an admin user of the party, signed in to the console, makes its users');
  }
  const client = await findClient(em, input.clientId);
  if (!isSignInClient(client) || (actor.kind !== 'OPERATOR' && !sameParty(client, actor.kind, actor.tenantId))) {
    throw new PartyUserError('NO_SUCH_SIGN_IN_CLIENT', `no console sign-in client ${input.clientId}`, 'signInClient');
  }
  const username = input.username.trim();
  if (!USERNAME.test(username)) throw new PartyUserError('INVALID_USERNAME', 'a user name is 3 to 64 letters, digits, ".", "_", "-" or "@", starting with a letter or digit', 'username');
  const displayName = input.displayName.trim();
  if (displayName.length === 0 || displayName.length > 100) throw new PartyUserError('INVALID_DISPLAY_NAME', 'a display name is 1 to 100 characters', 'displayName');
  const initialPassword = randomBytes(15).toString('base64url');
  const user = await insertPartyUser(em, { clientId: client.client_id, username, password: initialPassword, displayName, admin: input.admin, mustChangePassword: true });
  if (!user) throw new PartyUserError('USERNAME_TAKEN', `the user name ${username} is taken`, 'username');
  return { user, initialPassword };
}

/**
 * The user replaces the initial password with their own (the first sign-in's step). Refused unless
 * the current password is right (it is asked again: the sign-in pages keep no state between forms).
 * Returns why not, in words for the page, or the user.
 */
export async function chooseOwnPassword(em: EntityManager, clientId: string, username: string, current: string, next: string, repeated: string): Promise<PartyUser | { refused: string; wrongPassword?: boolean }> {
  const user = await authenticatePartyUser(em, clientId, username, current);
  if (!user) return { refused: 'Wrong username or password.', wrongPassword: true };
  if (next.length < MIN_PASSWORD_LENGTH) return { refused: `Choose a password of at least ${MIN_PASSWORD_LENGTH} characters.` };
  if (next !== repeated) return { refused: 'The two new passwords differ.' };
  if (next === current) return { refused: 'Choose a password other than the one you were given.' };
  const [row] = await em.execute<PartyUserRow[]>(`update party_user set password_hash = ?, must_change_password = false where id = ? returning *`, [await hashPassword(next), user.id]);
  return view(row!);
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
