/**
 * Pages are addressed by the URL's fragment (`/console/#/payments/…`): the API serves one page at
 * /console/, which is also the OAuth redirect URI, so the path never changes.
 */
import { signal } from './signal.ts';

const current = () => decodeURI(location.hash.replace(/^#/, '')) || '/';

export const route = signal<string>(typeof location === 'undefined' ? '/' : current());

if (typeof window !== 'undefined') window.addEventListener('hashchange', () => route.set(current()));

export function navigate(path: string): void {
  location.hash = path;
}

/** `/payments/:id` against `/payments/UGF5…`: the parameters, or undefined. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
  const p = pattern.split('/');
  const s = path.split('/');
  if (p.length !== s.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(':')) params[p[i]!.slice(1)] = decodeURIComponent(s[i]!);
    else if (p[i] !== s[i]) return undefined;
  }
  return params;
}
