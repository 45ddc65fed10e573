import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHECKS, type CheckName, PIPELINE, pipelineTable } from './pipeline.js';
import { SESSION_REFUSALS } from './session.errors.js';

const DOCS = path.resolve(__dirname, '../../../../docs/readers.md');
const BEGIN = '<!-- pipeline table: generated from api/src/readers/session/pipeline.ts, kept by pipeline.test.ts -->';
const END = '<!-- end of pipeline table -->';

describe('the card-session pipeline table', () => {
  it('docs/readers.md shows the table the engine runs', () => {
    const docs = fs.readFileSync(DOCS, 'utf8');
    const start = docs.indexOf(BEGIN);
    const end = docs.indexOf(END);
    expect(start, `docs/readers.md has the markers ${BEGIN} … ${END}`).toBeGreaterThan(-1);
    expect(docs.slice(start + BEGIN.length, end).trim(), 'paste pipelineTable() between the markers').toBe(pipelineTable());
  });

  it('each check file refuses only with the refusals the table lists for it, and every check is listed', () => {
    const dir = path.join(__dirname, 'checks');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const known = new Set<string>(SESSION_REFUSALS);
    for (const file of files) {
      const name = file.replace(/\.ts$/, '') as CheckName;
      expect(CHECKS[name], `checks/${file} is in CHECKS`).toBeDefined();
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      const refusals = [...source.matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!).filter((r) => known.has(r));
      for (const refusal of refusals) expect(CHECKS[name].refusals, `checks/${file} refuses with ${refusal}`).toContain(refusal);
      // A check names itself when it refuses, so the audit row says which one did.
      if (refusals.length) expect(source, `checks/${file} names itself`).toContain(`.at('${name}')`);
    }
    // Every named check but the purpose's own guard has its file.
    for (const name of Object.keys(CHECKS).filter((n) => n !== 'purpose')) expect(files).toContain(`${name}.ts`);
  });

  it('every card type and operation has a step for each state a session passes through', () => {
    for (const card of ['CPU', 'M1'] as const) {
      for (const operation of ['BALANCE', 'LOAD', 'PURCHASE'] as const) {
        const states = card === 'CPU' ? ['OPEN', 'AUTHENTICATED', ...(operation === 'BALANCE' ? [] : ['AWAITING_TAC'])] : ['OPEN', 'AUTHENTICATED', 'AWAITING_PURSE', ...(operation === 'BALANCE' ? [] : ['AWAITING_WRITE'])];
        for (const state of states) {
          const step = PIPELINE[`${card} ${operation} ${state}` as keyof typeof PIPELINE] ?? PIPELINE[`${card} * ${state}` as keyof typeof PIPELINE];
          expect(step, `${card} ${operation} ${state}`).toBeDefined();
        }
      }
    }
  });
});
