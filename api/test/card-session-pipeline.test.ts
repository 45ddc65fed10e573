import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { CHECKS } from '../src/readers/session/pipeline.js';
import { apiClient, issueCard, newReader, sessionsOf, sessionUuid, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

/**
 * The card-session engine runs named checks (docs/readers.md, "Checks per message"): a refusal's
 * audit row says which one refused, so whoever reads the trail sees the step, not only the code.
 */

const world = useCardSessionWorld();
let issuer: OneCardClient;
let reader: TestReader;

beforeAll(async () => {
  reader = await newReader(world, 'GZ-PIPELINE-1', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage', 'topups:write', 'cards:read']);
});

const sessions = () => sessionsOf(issuer, () => reader);
const card = () => issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });

async function refusalRow(sessionGlobalId: string) {
  const [row] = await world.db.orm.em.fork().execute<{ refusal: string; detail: { refusedBy?: string } }[]>(
    `select refusal, detail from card_session_audit where session_id = ? and outcome = 'REFUSED' order by id desc limit 1`,
    [sessionUuid(sessionGlobalId)],
  );
  return { refusal: row?.refusal, refusedBy: row?.detail.refusedBy };
}

type Manual = Awaited<ReturnType<ReturnType<typeof sessions>['manual']>>;

const CASES: { name: string; refusal: string; check: string; act: (m: Manual) => Promise<unknown> }[] = [
  { name: 'a message out of order', refusal: 'OUT_OF_ORDER', check: 'sequence', act: (m) => m.message(1, { responses: [] }) },
  { name: 'a body that is not a JSON object', refusal: 'MALFORMED_MESSAGE', check: 'body', act: (m) => m.message(0, null) },
  { name: 'a hello signing another challenge', refusal: 'CHALLENGE_MISMATCH', check: 'challenge', act: (m) => m.hello({ challenge: '00' }) },
  { name: 'a hello without its city certificate', refusal: 'CERTIFICATE_MISSING', check: 'challenge', act: (m) => m.hello({ cityCertificate: undefined }) },
  { name: 'a hello with the national certificate in the city one’s place', refusal: 'UNKNOWN_CA', check: 'chains', act: (m) => m.hello({ cityCertificate: reader.nationalPem }) },
  {
    name: 'a tampered message after the hello',
    refusal: 'BAD_SIGNATURE',
    check: 'signature',
    act: async (m) => {
      await m.hello();
      return m.message(1, { responses: ['00'] }, (t) => t.replace('00', '01'));
    },
  },
  {
    name: 'too few card answers',
    refusal: 'MALFORMED_MESSAGE',
    check: 'body',
    act: async (m) => {
      await m.hello();
      return m.message(1, { responses: ['9000'] });
    },
  },
  {
    name: 'a card whose SELECT failed',
    refusal: 'CARD_ERROR',
    check: 'card-answers',
    act: async (m) => {
      await m.hello();
      return m.message(1, { responses: ['6A82', '9000', '9000', '9000'] });
    },
  },
  {
    name: 'a card whose key version its card company does not hold',
    refusal: 'UNKNOWN_CARD_KEY',
    check: 'card-answers',
    act: async (m) => {
      // The session's card is one keyed under a version the card company has no key for.
      const c = VirtualCpuCard.issue({ asn: '00000000000000008888', cityCode: world.gz.cardCode, masterKeys: world.gzMasterKeys, keyVersion: 7, algorithm: '3DES' });
      const first = await m.hello();
      const answers = await sessions().manual(c).then((other) => other.answer(1, first));
      return m.message(1, { responses: answers });
    },
  },
];

describe('a refused card-session message names the check that refused it', () => {
  it.each(CASES)('$name: $refusal by $check', async ({ refusal, check, act }) => {
    const m = await sessions().manual(card());
    await act(m);
    expect(await refusalRow(m.session.id)).toEqual({ refusal, refusedBy: check });
  });

  it('the checks named here are the table’s, with these refusals', () => {
    for (const { refusal, check } of CASES) expect(CHECKS[check as keyof typeof CHECKS]?.refusals, check).toContain(refusal);
  });
});
