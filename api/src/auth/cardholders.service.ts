import { randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { EntityManager } from '@mikro-orm/postgresql';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

/** scrypt with a random salt: people's passwords are guessable, unlike client secrets. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64url')}$${(await scryptAsync(password, salt, 32)).toString('base64url')}`;
}

export async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [, salt, hash] = stored.split('$');
  const expected = Buffer.from(hash!, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt!, 'base64url'), expected.length);
  return timingSafeEqual(actual, expected);
}

/** Checked when the name is unknown, so that a wrong name costs what a wrong password does. */
export const NO_SUCH_USER_HASH = 'scrypt$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export interface Cardholder {
  id: string;
  username: string;
  displayName: string;
}

/** A cardholder who signs in to consent to an app (the demo's holders; real ones come with cards). */
export async function createCardholder(em: EntityManager, input: { username: string; password: string; displayName: string }): Promise<Cardholder> {
  const id = randomUUID();
  await em.execute(`insert into cardholder (id, username, password_hash, display_name) values (?, ?, ?, ?)`, [
    id,
    input.username,
    await hashPassword(input.password),
    input.displayName,
  ]);
  return { id, username: input.username, displayName: input.displayName };
}

/** The cardholder for these credentials, or undefined; the same work either way, so no timing hint. */
export async function authenticateCardholder(em: EntityManager, username: string, password: string): Promise<Cardholder | undefined> {
  const [row] = await em.execute<{ id: string; username: string; display_name: string; password_hash: string }[]>(`select * from cardholder where username = ?`, [username]);
  const ok = await passwordMatches(password, row?.password_hash ?? NO_SUCH_USER_HASH);
  return row && ok ? { id: row.id, username: row.username, displayName: row.display_name } : undefined;
}

export async function findCardholder(em: EntityManager, id: string): Promise<Cardholder | undefined> {
  if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
  const [row] = await em.execute<{ id: string; username: string; display_name: string }[]>(`select id, username, display_name from cardholder where id = ?`, [id]);
  return row && { id: row.id, username: row.username, displayName: row.display_name };
}
