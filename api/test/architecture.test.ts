import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The allowed arrows between contexts (docs/architecture.md, "Contexts and their imports"), kept by
 * reading the import lines of every module under api/src (tests beside the code excluded: they may
 * reach anywhere). Type-only and dynamic imports count like any other: a cycle of types is still a
 * cycle to a reader.
 */

const SRC = path.resolve(__dirname, '../src');

/** The engine and the kits below the business: they serve it and import none of it. */
const FOUNDATIONS = ['readers', 'ledger', 'cardcrypto', 'pki'];
/** Business contexts. */
const BUSINESS = ['payments', 'bills', 'topups', 'settlement', 'cards', 'webhooks', 'wallets', 'analytics'];
/** Where the platform is assembled; nothing below imports it. */
const COMPOSITION = ['platform.ts', 'main.ts', 'card-sessions.ts', 'schema.ts', 'apollo.ts', 'http', 'jobs', 'cli', 'bench', 'demo'];

/** Import cycles that exist and are not ours to remove yet. None today: keep it that way. */
const CYCLE_EXCEPTIONS: string[][] = [];

const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/gm;

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return modules(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** module (relative to api/src) → the api/src modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of modules(SRC)) {
    const targets = new Set<string>();
    for (const m of fs.readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = path.resolve(path.dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts'));
      if (target.startsWith(SRC + path.sep) && fs.existsSync(target)) targets.add(path.relative(SRC, target));
    }
    graph.set(path.relative(SRC, file), [...targets]);
  }
  return graph;
}

/** The top-level folder (or root file) a module belongs to. */
const contextOf = (module: string) => module.split('/')[0]!;

/** Strongly connected components of more than one module (Tarjan): every import cycle, each once. */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const graph = importGraph();
const edges = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));

describe('architecture: contexts import only what docs/architecture.md allows', () => {
  it('reads the import graph (a broken reader would make every rule pass)', () => {
    expect(graph.size).toBeGreaterThan(150);
    // Known arrows of each kind: static, type-only, re-export.
    expect(graph.get('payments/payment-card-step.ts')).toContain('readers/session/card-session.service.ts');
    expect(graph.get('readers/session/step.ts')).toContain('readers/session/purpose.ts');
    expect(graph.get('platform.ts')).toContain('card-sessions.ts');
    expect(graph.get('schema.ts')).toContain('payments/payments.resolver.ts');
    expect(importCycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
  });

  it('the engine (readers/), ledger/, cardcrypto/ and pki/ import no business context and nothing of the composition root', () => {
    const forbidden = edges.filter(
      ({ from, to }) =>
        FOUNDATIONS.includes(contextOf(from)) &&
        (BUSINESS.includes(contextOf(to)) || (COMPOSITION.includes(contextOf(to)) && to !== 'demo/seed-step.ts')),
    );
    // demo/seed-step.ts is the shape of a seed step (types only); the list of steps imports the contexts, not the reverse.
    expect(forbidden.map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('cardcrypto/ is pure: it imports nothing outside itself', () => {
    expect(edges.filter(({ from, to }) => contextOf(from) === 'cardcrypto' && contextOf(to) !== 'cardcrypto').map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('lifecycle/ (the state-machine helper) is a kit: it imports nothing of api/src outside itself', () => {
    expect(graph.has('lifecycle/machine.ts')).toBe(true);
    expect(edges.filter(({ from, to }) => contextOf(from) === 'lifecycle' && contextOf(to) !== 'lifecycle').map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('the GraphQL kit (graphql/) imports no context and nothing of the composition root, only itself and config/', () => {
    const outside = edges.filter(({ from, to }) => contextOf(from) === 'graphql' && !['graphql', 'config'].includes(contextOf(to)));
    expect(outside.map(({ from, to }) => `${from} → ${to}`)).toEqual([]);
  });

  it('no import cycle among api/src modules', () => {
    const allowed = new Set(CYCLE_EXCEPTIONS.map((c) => [...c].sort().join(' ')));
    expect(importCycles(graph).filter((c) => !allowed.has(c.join(' ')))).toEqual([]);
  });
});
