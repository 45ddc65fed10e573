/**
 * The console in Chromium for a test file (issue 26): the console built as `npm run build` builds it,
 * a browser for the file, pages that fail the test on a script error, a CSP violation, an HTTP error
 * or a request to another origin, the sign-in of a party's clerk through OneCard's own sign-in page,
 * axe-core, and the docs' screenshots (ONECARD_CONSOLE_SCREENSHOTS=docs/images/console).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { createClient } from '../../src/auth/clients.service.js';
import { createPartyUser } from '../../src/auth/party-users.service.js';
import { launchBrowser } from './browser.js';
import type { CardSessionWorld } from './card-sessions.js';

const root = path.resolve(import.meta.dirname, '../../..');

export type ConsolePage = Page & { problems: string[] };
export type PartyKind = 'MERCHANT' | 'BILLER' | 'ISSUER' | 'OPERATOR';

export function useConsoleBrowser(world: CardSessionWorld) {
  let browser: Browser;
  const users = new Map<string, { name: string; username: string; password: string }>();
  beforeAll(async () => {
    // A no-op when console/dist is newer than its sources.
    await promisify(execFile)(process.execPath, [path.join(root, 'console/scripts/build.mjs'), '--if-changed']);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** A console sign-in client of the party, and its admin clerk `<party>-clerk`. */
  async function consoleUser(party: string, kind: PartyKind, tenantId: string | null, name: string, scopes: string[]) {
    const em = world.db.orm.em.fork();
    const { client } = await createClient(em, { kind, tenantId, name, scopes, redirectUris: [`${world.server.url}/console/`] });
    const user = { name, username: `${party}-clerk`, password: `${party} clerk password` };
    await createPartyUser(em, { clientId: client.client_id, username: user.username, password: user.password, displayName: name, admin: true });
    users.set(party, user);
    return client.client_id;
  }

  async function consolePage(): Promise<ConsolePage> {
    const page = (await browser.newPage()) as ConsolePage;
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
    // Chromium's own favicon request on OneCard's sign-in pages (they name no icon) is not the console's.
    page.on('console', (m) => m.type() === 'error' && !m.location().url.endsWith('/favicon.ico') && page.problems.push(`console error: ${m.text()} (${m.location().url})`));
    page.on('response', (r) => r.status() >= 400 && page.problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`));
    page.on('request', (r) => {
      if (!/^(data|blob):/.test(r.url()) && new URL(r.url()).origin !== world.server.url) page.problems.push(`request to another origin: ${r.url()}`);
    });
    return page;
  }

  /** Through the console's sign-in: choose the organisation, sign in on OneCard's page, allow. */
  async function signIn(page: Page, party: string) {
    const user = users.get(party)!;
    await page.goto(`${world.server.url}/console`);
    await page.getByRole('button', { name: `Sign in to ${user.name}` }).click();
    await page.waitForURL(/\/oauth\/interaction\//);
    await page.fill('#username', user.username);
    await page.fill('#password', user.password);
    await page.click('button[type=submit]');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForSelector('#signed-in-as');
    expect(await page.textContent('#signed-in-as')).toContain(user.name);
  }

  /** axe-core's serious and critical findings on the page as it is now. */
  async function seriousViolations(page: Page): Promise<{ id: string; impact: string; help: string; nodes: string[] }[]> {
    await page.evaluate(await fs.readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
    const all: { id: string; impact: string; help: string; nodes: string[] }[] = await page.evaluate(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })))`,
    );
    return all.filter((v) => ['serious', 'critical'].includes(v.impact));
  }

  /** With ONECARD_CONSOLE_SCREENSHOTS=<folder>, the page as <name>.png there (docs/console.md's pictures). */
  async function screenshot(page: Page, name: string) {
    const dir = process.env.ONECARD_CONSOLE_SCREENSHOTS;
    if (!dir) return;
    await page.setViewportSize({ width: 1100, height: 760 });
    await page.screenshot({ path: path.resolve(root, dir, `${name}.png`), fullPage: true });
  }

  return { consoleUser, consolePage, signIn, seriousViolations, screenshot };
}
