import { randomUUID, X509Certificate } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { hostKeyOfCity } from '../pki/host-key.js';
import { devicePublicKeyOf, issuerKeyIdOf, signCredential } from './qr-code.js';
import { walletBalances } from './wallet-ledger.js';
import { findWalletFor, type WalletRow } from './wallet-rows.js';
import { WalletError } from './wallets.errors.js';

/**
 * QR ride credentials (乘车码, issue 25 item 2): the card company signs one for the holder's app and
 * device key; scanners fetch the card company's signing certificate and the blocklist as a delta.
 */

/** A credential is good for this long; the app asks for a new one before it runs out. */
export const CREDENTIAL_TTL_MS = 6 * 3600_000;

export interface IssuedCredential {
  id: string;
  walletId: string;
  code: string;
  validFrom: Date;
  validUntil: Date;
  signingCertificates: string[];
}

/** What the wallet can still pay for: its balance and the debt it may still run up. */
const availableOf = async (em: EntityManager, wallet: WalletRow) => {
  const { balance, debt } = await walletBalances(em, wallet);
  return balance + BigInt(wallet.debt_limit) - debt;
};

/**
 * Whether a ride of the wallet was refused DEBT_LIMIT_EXCEEDED after its last paid top-up. Some
 * allowance may be left below the fare refused: a new credential would let the holder ride on (and
 * be refused again on upload) although the refusal blocked every credential it had.
 */
async function refusedAtDebtLimitSinceTopUp(em: EntityManager, walletId: string): Promise<boolean> {
  const [row] = await em.execute<{ refused: boolean }[]>(
    `select exists (
       select 1 from qr_ride q join qr_credential c on c.id = q.credential_id join qr_ride_batch b on b.id = q.batch_row_id
        where c.wallet_id = ? and q.outcome = 'DEBT_LIMIT_EXCEEDED'
          and b.received_at > coalesce((select max(paid_at) from top_up where wallet_id = ? and status = 'PAID'), '-infinity')
     ) as refused`,
    [walletId, walletId],
  );
  return !!row?.refused;
}

/**
 * Signs a credential for the holder's wallet and the app's device key (an uncompressed P-256 point,
 * base64url): refused while the wallet can pay for nothing (its debt at the limit, nothing in it), or
 * while a ride refused at its debt limit has not been followed by a top-up.
 */
export async function issueQrCredential(em: EntityManager, deps: { kek: Buffer; publicUrl: string; now?: Date }, principal: Principal, input: { walletId: string; devicePublicKey: string }): Promise<IssuedCredential> {
  const point = /^[A-Za-z0-9_-]{80,100}$/.test(input.devicePublicKey) ? Buffer.from(input.devicePublicKey, 'base64url') : Buffer.alloc(0);
  if (!devicePublicKeyOf(point)) throw new WalletError('INVALID_INPUT', 'a device public key is an uncompressed P-256 point (65 bytes, 0x04 ‖ x ‖ y), base64url', 'devicePublicKey');
  const wallet = principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') ? await findWalletFor(em, principal, input.walletId) : null;
  if (!wallet) throw new WalletError('NOT_FOUND', `no transit wallet ${input.walletId} you may ride with`, 'wallet');
  if ((await availableOf(em, wallet)) <= 0n) throw new WalletError('INSUFFICIENT_FUNDS', 'the wallet owes its whole debt limit: top it up to ride again', 'wallet');
  if (await refusedAtDebtLimitSinceTopUp(em, wallet.id)) throw new WalletError('INSUFFICIENT_FUNDS', 'a ride was refused at the wallet’s debt limit and its credentials blocked: top it up to ride again', 'wallet');
  const host = await hostKeyOfCity(em, deps.kek, wallet.city_id, deps.publicUrl);
  const now = deps.now ?? new Date();
  // Whole seconds, as the code carries them.
  const validFrom = new Date(Math.floor(+now / 1000) * 1000);
  const validUntil = new Date(+validFrom + CREDENTIAL_TTL_MS);
  const id = randomUUID();
  await em.execute(`insert into qr_credential (id, wallet_id, device_public_key, valid_from, valid_until, issued_by_client) values (?, ?, ?, ?, ?, ?)`, [id, wallet.id, point, validFrom, validUntil, principal.clientId]);
  const code = signCredential(
    { credentialId: id, walletId: wallet.id, holderId: wallet.holder_id, cardCompanyId: wallet.card_company_id, validFrom, validUntil, issuerKeyId: issuerKeyIdOf(new X509Certificate(host.chainPem[0]!).publicKey), devicePublicKey: point },
    host.privateKey,
  );
  return { id, walletId: wallet.id, code, validFrom, validUntil, signingCertificates: host.chainPem };
}

export interface CredentialRow {
  id: string;
  wallet_id: string;
  holder_id: string;
  card_company_id: string;
  valid_from: Date;
  valid_until: Date;
  blocked_at: Date | null;
  block_reason: string | null;
  /** The device key the card company bound it to (65 bytes). */
  device_public_key: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function credentialById(em: EntityManager, id: string): Promise<CredentialRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<CredentialRow[]>(
    `select q.id, q.wallet_id, w.holder_id, w.card_company_id, q.valid_from, q.valid_until, q.device_public_key, b.blocked_at, b.reason as block_reason
       from qr_credential q join transit_wallet w on w.id = q.wallet_id left join qr_blocklist b on b.credential_id = q.id where q.id = ?`,
    [id],
  );
  // Raw rows carry timestamps as PostgreSQL text: the ride checks compare them as times.
  return row ? { ...row, valid_from: new Date(row.valid_from), valid_until: new Date(row.valid_until), blocked_at: row.blocked_at ? new Date(row.blocked_at) : null } : null;
}

/** Puts credentials on their card company's blocklist (once each), in the caller's transaction. */
export async function blockCredentials(em: EntityManager, credentialIds: string[], reason: string): Promise<void> {
  if (!credentialIds.length) return;
  await em.execute(
    `insert into qr_blocklist (card_company_id, credential_id, reason)
     select w.card_company_id, q.id, ? from qr_credential q join transit_wallet w on w.id = q.wallet_id where q.id in (?) order by q.id
     on conflict (credential_id) do nothing`,
    [reason, credentialIds],
  );
}

/** Blocks every credential of a wallet that has not run out: its debt reached the limit. */
export async function blockWalletCredentials(em: EntityManager, walletId: string, reason: string, now: Date): Promise<void> {
  const rows = await em.execute<{ id: string }[]>(`select id from qr_credential where wallet_id = ? and valid_until > ?`, [walletId, now]);
  await blockCredentials(
    em,
    rows.map((r) => r.id),
    reason,
  );
}

/**
 * Blocks a credential: the holder's app its holder's (a lost phone, scope card:topup), the card
 * company its wallets' (topups:write). Blocked stays blocked: the app asks for a new one.
 */
export async function blockQrCredential(em: EntityManager, principal: Principal, input: { credentialId: string; reason: string }): Promise<CredentialRow> {
  const reason = input.reason.trim();
  if (reason.length < 1 || reason.length > 500) throw new WalletError('INVALID_INPUT', 'a reason is 1 to 500 characters', 'reason');
  const found = await credentialById(em, input.credentialId);
  const may =
    found &&
    ((principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') && principal.holderId === found.holder_id) ||
      (principal.kind === 'ISSUER' && principal.scopes.includes('topups:write') && principal.tenantId === found.card_company_id));
  if (!found || !may) throw new WalletError('NOT_FOUND', `no QR credential ${input.credentialId} you may block`, 'credential');
  await blockCredentials(em, [found.id], `${reason} (by ${principal.clientId})`);
  return (await credentialById(em, found.id))!;
}

/**
 * How long after its recorded retirement a host key may still have signed: the retirement is
 * stamped when the retiring transaction starts (now() in the delete trigger), and the host signs
 * with the committed row until that transaction commits. A credential signed meanwhile is honoured,
 * not turned away as FORGED for its whole validity. (A leaked key can backdate a credential anyway;
 * what stops such a credential is the upload's check of its device key against the one on record.)
 */
const RETIREMENT_COMMIT_GRACE_MS = 5 * 60_000;

export interface RetiredSigningCertificate {
  certificate: string;
  /** Until when it signed: its recorded retirement plus the time the retiring transaction may take to commit. */
  retiredAt: Date;
  /** Retirement plus a credential's validity: no credential it signed is valid past this. */
  usableUntil: Date;
}

/**
 * The city's host certificates retired after `since` (docs/qr-rides.md, "Host key rotation"): the
 * credentials they signed before retirement are honoured until they run out, never longer.
 */
export async function retiredSigningCertificates(em: EntityManager, caId: string, since: Date): Promise<RetiredSigningCertificate[]> {
  const rows = await em.execute<{ certificate_pem: string; retired_at: Date }[]>(`select certificate_pem, retired_at from retired_host_signing_key where ca_id = ? and retired_at > ? order by retired_at`, [caId, new Date(+since - RETIREMENT_COMMIT_GRACE_MS)]);
  return rows.map((r) => {
    const retiredAt = new Date(+new Date(r.retired_at) + RETIREMENT_COMMIT_GRACE_MS);
    return { certificate: r.certificate_pem, retiredAt, usableUntil: new Date(+retiredAt + CREDENTIAL_TTL_MS) };
  });
}

export interface ScannerUpdate {
  signingCertificates: string[];
  retiredSigningCertificates: RetiredSigningCertificate[];
  blocked: { credentialId: string; sequence: number; blockedAt: Date }[];
  sequence: number;
}

/**
 * What a scanner needs to verify a card company's codes offline: its signing certificate chain
 * (host certificate, city working CA) and the blocklist entries after `afterSequence` (a delta, like
 * the card blacklist). Credential ids only: nothing personal.
 */
export async function scannerUpdate(em: EntityManager, deps: { kek: Buffer; publicUrl: string; now?: Date }, cardCompanyId: string, afterSequence: number): Promise<ScannerUpdate | null> {
  if (!UUID.test(cardCompanyId)) return null;
  const [company] = await em.execute<{ city_id: string }[]>(`select city_id from card_company where id = ?`, [cardCompanyId]);
  if (!company) return null;
  const host = await hostKeyOfCity(em, deps.kek, company.city_id, deps.publicUrl);
  const rows = await em.execute<{ credential_id: string; sequence: string; blocked_at: Date }[]>(
    `select credential_id, sequence::text as sequence, blocked_at from qr_blocklist where card_company_id = ? and sequence > ? order by sequence limit 10000`,
    [cardCompanyId, afterSequence],
  );
  const blocked = rows.map((r) => ({ credentialId: r.credential_id, sequence: Number(r.sequence), blockedAt: new Date(r.blocked_at) }));
  // Only the retired certificates some credential may still need: retired less than a credential's validity ago.
  const retired = await retiredSigningCertificates(em, host.caId, new Date(+(deps.now ?? new Date()) - CREDENTIAL_TTL_MS));
  return { signingCertificates: host.chainPem, retiredSigningCertificates: retired, blocked, sequence: blocked.at(-1)?.sequence ?? afterSequence };
}
