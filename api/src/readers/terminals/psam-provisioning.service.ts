/**
 * Provisioning a terminal's software PSAM (issue 24 item 4). A gate or bus validator computes MAC1
 * and checks MAC2 offline, so it needs its card company's purchase master keys (CARD-PROTOCOL.md §5).
 * The card company hands them to one registered terminal, sealed so that only that terminal opens
 * them and signed so that the terminal knows who sent them:
 *
 * - **Sealed to the terminal's encryption certificate**: a fresh AES-256-GCM key wrapped with RSA-OAEP
 *   (SHA-256) to the key the city CA certified for this reader at registration (the card sessions'
 *   envelope, session/envelope.ts). Not to a public key sent with the request: whoever holds a
 *   `readers:manage` token could then name a key of their own and read the master keys.
 * - **Bound** by the AEAD's associated data to the terminal (global id) and its terminal number.
 * - **Signed** by the city's host key (a server certificate from the city working CA), as every
 *   host → reader message is (DESIGN.md §6): a sealed message proves only who can read it.
 *
 * Keys kept in an HSM never leave it, so they cannot be provisioned into a software PSAM.
 */
import { createPublicKey, randomUUID, sign } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { findIssued } from '../../pki/pki.service.js';
import { hostKeyOfCity } from '../../pki/host-key.js';
import { unseal } from '../../secrets/kek.js';
import { ACTIVE_MASTER_KEY, masterKeyLabel } from '../key-store.js';
import type { ReaderRow } from '../readers.service.js';
import { sealForReader } from '../session/envelope.js';
import { TerminalProvisioningError } from './psam-provisioning.errors.js';

export const PSAM_PACKAGE_PROTOCOL = 'onecard-psam-v1';

/** What the terminal gets: the signed payload (JSON) and the host's signature and chain. */
export interface PsamPackage {
  payload: string;
  /** Base64 ECDSA P-256 / SHA-256 (DER) over the payload's UTF-8 bytes, by the city's host key. */
  signature: string;
  /** The host certificate, then the city working CA's. */
  certificateChain: string[];
}

/** What the sealed part holds, once opened inside the terminal. */
export interface PsamSecrets {
  terminalNumber: string;
  keys: { keyVersion: number; algorithm: '3DES' | 'SM4'; purchaseMasterKey: string }[];
}

/** The associated data the seal is bound to: a package opened for another terminal or number fails. */
export const psamAssociatedData = (terminalGlobalId: string, terminalNumber: string) => `${PSAM_PACKAGE_PROTOCOL}\n${terminalGlobalId}\n${terminalNumber}`;

export interface ProvisionInput {
  terminal: ReaderRow;
  terminalGlobalId: string;
  cardCompanyId: string;
  /** The OAuth client that asked: recorded with what was sent. */
  clientId: string;
  kek: Buffer;
  publicUrl: string;
  now?: Date;
}

/** Who may be a terminal: the readers that upload offline batches (settlement/offline-upload.service.ts). */
function checkIsTerminal(terminal: ReaderRow): void {
  if (terminal.owner_kind !== 'CARD_COMPANY' && terminal.owner_kind !== 'MERCHANT') throw new TerminalProvisioningError('NOT_A_TERMINAL', 'only readers of a card company or a merchant are terminals');
  if (terminal.status !== 'ACTIVE') throw new TerminalProvisioningError('TERMINAL_NOT_ACTIVE', `the terminal is ${terminal.status}`);
  if (!terminal.encryption_certificate_serial) throw new TerminalProvisioningError('NO_ENCRYPTION_CERTIFICATE', 'the terminal has no encryption certificate (registered with one key): register it again with three CSRs');
}

/** The card company's active PURCHASE master keys, unsealed; refused when one is kept in an HSM. */
async function purchaseMasterKeys(em: EntityManager, kek: Buffer, cardCompanyId: string): Promise<PsamSecrets['keys']> {
  const rows = await em.execute<{ key_version: number; algorithm: '3DES' | 'SM4'; sealed_key: string | null; stored_in: string }[]>(
    `select key_version, algorithm, sealed_key, stored_in from card_master_key where card_company_id = ? and purpose = 'PURCHASE' and ${ACTIVE_MASTER_KEY} order by key_version`,
    [cardCompanyId],
  );
  if (rows.length === 0) throw new TerminalProvisioningError('NO_PURCHASE_KEY', 'the card company has no active PURCHASE master key');
  const inHsm = rows.find((r) => r.stored_in !== 'SOFTWARE' || !r.sealed_key);
  if (inHsm) throw new TerminalProvisioningError('KEY_IN_HSM', `the PURCHASE master key version ${inHsm.key_version} is kept in an HSM and never leaves it: give the terminal a hardware PSAM`);
  return rows.map((r) => ({ keyVersion: r.key_version, algorithm: r.algorithm, purchaseMasterKey: unseal(kek, masterKeyLabel(cardCompanyId, 'PURCHASE', r.key_version), r.sealed_key!).toString('hex').toUpperCase() }));
}

/** The terminal's PSAM package: its number and its card company's purchase keys, sealed to it and signed. */
export async function provisionPsam(em: EntityManager, input: ProvisionInput): Promise<{ psam: PsamPackage; keyVersions: number[] }> {
  const { terminal } = input;
  checkIsTerminal(terminal);
  const encryption = await findIssued(em, terminal.encryption_certificate_serial!);
  if (!encryption || encryption.status !== 'GOOD' || encryption.not_after < (input.now ?? new Date())) throw new TerminalProvisioningError('NO_ENCRYPTION_CERTIFICATE', 'the terminal’s encryption certificate is not valid');
  const keys = await purchaseMasterKeys(em, input.kek, input.cardCompanyId);
  const secrets: PsamSecrets = { terminalNumber: terminal.terminal_number, keys };
  const plaintext = Buffer.from(JSON.stringify(secrets), 'utf8');
  const publicKeyPem = createPublicKey(encryption.certificate_pem).export({ type: 'spki', format: 'pem' }).toString();
  const sealed = sealForReader(publicKeyPem, plaintext, psamAssociatedData(input.terminalGlobalId, terminal.terminal_number));
  plaintext.fill(0);
  const hostKey = await hostKeyOfCity(em, input.kek, terminal.city_id, input.publicUrl);
  const keyVersions = keys.map((k) => k.keyVersion);
  const payload = JSON.stringify({
    protocol: PSAM_PACKAGE_PROTOCOL,
    terminal: input.terminalGlobalId,
    terminalNumber: terminal.terminal_number,
    keyVersions,
    issuedAt: (input.now ?? new Date()).toISOString(),
    sealed,
  });
  const signature = sign('sha256', Buffer.from(payload, 'utf8'), hostKey.privateKey).toString('base64');
  // No package leaves without its record: which terminal holds which key versions (not the keys).
  await em.execute(`insert into psam_provisioning (id, reader_id, card_company_id, terminal_number, key_versions, client_id) values (?, ?, ?, ?, ?::integer[], ?)`, [
    randomUUID(),
    terminal.id,
    input.cardCompanyId,
    terminal.terminal_number,
    `{${keyVersions.join(',')}}`,
    input.clientId,
  ]);
  return { psam: { payload, signature, certificateChain: hostKey.chainPem }, keyVersions };
}
