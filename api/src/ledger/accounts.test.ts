import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every module under api/src but tests, with its path relative to api/src. */
function modules(dir: string, root = dir): { file: string; source: string }[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return modules(p, root);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [{ file: path.relative(root, p), source: fs.readFileSync(p, 'utf8') }] : [];
  });
}

const SRC = path.resolve(__dirname, '..');
/** openAccount's own module, and the chart. The benchmarks open scratch accounts of their own (`bench.*`). */
const MAY_OPEN = (file: string) => file === 'ledger/ledger.service.ts' || file === 'ledger/accounts.ts' || file.startsWith('bench/');
/** An account code built in a template literal: `card.${asn}.purse.${cur}`, `operator.fee-revenue.${cur}`, … */
const SPELLED_CODE = /`[^`\n]*\$\{[^`\n]*\}\.(purse|payable|pending-loads|counter-cash|transit-revenue)\.[^`\n]*`|`(gateway\.clearing|operator\.fee-revenue|operator\.gateway-fees|settlement\.in-transit)\.\$\{/;

describe('one chart of accounts (ledger/accounts.ts)', () => {
  const all = modules(SRC);

  it('reads the sources (a wrong folder would make the rules pass)', () => {
    expect(all.find((m) => m.file === 'ledger/accounts.ts')?.source).toMatch(SPELLED_CODE);
  });

  it('no other module opens an account', () => {
    expect(all.filter((m) => !MAY_OPEN(m.file) && /\bopenAccount\(/.test(m.source)).map((m) => m.file)).toEqual([]);
  });

  it('no other module spells an account code', () => {
    expect(all.filter((m) => m.file !== 'ledger/accounts.ts' && SPELLED_CODE.test(m.source)).map((m) => m.file)).toEqual([]);
  });
});
