import { describe, expect, it } from 'vitest';
import { HistoryWindowError, historyWindow } from './card-history.service.js';

const now = new Date('2026-11-25T12:00:00Z');
const at = (iso: string) => new Date(iso);

describe('the history window', () => {
  it('defaults to the six months before now, open-ended at now', () => {
    expect(historyWindow({}, now)).toEqual({ from: at('2026-05-25T12:00:00Z'), to: null });
  });

  it('defaults `from` to six months before a given `to`', () => {
    expect(historyWindow({ to: at('2026-03-31T00:00:00Z') }, now)).toEqual({ from: at('2025-09-30T00:00:00Z'), to: at('2026-03-31T00:00:00Z') });
  });

  it('takes a window of up to 13 months', () => {
    expect(historyWindow({ from: at('2025-10-25T12:00:00Z') }, now)).toEqual({ from: at('2025-10-25T12:00:00Z'), to: null });
    expect(historyWindow({ from: at('2026-01-01T00:00:00Z'), to: at('2026-01-01T00:00:00Z') }, now).from).toEqual(at('2026-01-01T00:00:00Z'));
  });

  it.each([
    ['`from` after `to`', { from: at('2026-02-01T00:00:00Z'), to: at('2026-01-01T00:00:00Z') }],
    ['`from` after now, with no `to`', { from: at('2026-12-01T00:00:00Z') }],
    ['a window over 13 months', { from: at('2025-10-25T11:59:59Z') }],
    ['a window over 13 months ending at `to`', { from: at('2024-01-01T00:00:00Z'), to: at('2025-02-01T00:00:01Z') }],
  ])('refuses %s', (_name, args) => {
    expect(() => historyWindow(args, now)).toThrow(HistoryWindowError);
  });
});
