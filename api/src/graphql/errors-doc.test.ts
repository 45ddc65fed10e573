import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SESSION_REFUSALS } from '../readers/session/session.errors.js';
import { publicErrorCodes } from './errors.js';
import { UserErrorCode } from './user-error.js';

const doc = fs.readFileSync(path.resolve(import.meta.dirname, '../../../docs/errors.md'), 'utf8');
const listed = (code: string) => doc.includes(`\`${code}\``);

describe('docs/errors.md', () => {
  it('lists every GraphQL error code a client may see', () => {
    expect([...publicErrorCodes(), 'INTERNAL_SERVER_ERROR'].filter((c) => !listed(c))).toEqual([]);
  });

  it('lists every userError code', () => {
    expect(Object.values(UserErrorCode).filter((c) => !listed(c))).toEqual([]);
  });

  it('lists every card session refusal', () => {
    expect(SESSION_REFUSALS.filter((c) => !listed(c))).toEqual([]);
  });
});
