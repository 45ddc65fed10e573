/**
 * What `npm start` prints once it listens: where things are, where the demo credentials are (the
 * file, never the secrets: stdout ends up in logs), and the next three things to try.
 */
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { DemoData } from './seed.js';

export function startBanner(input: { config: Pick<Config, 'publicUrl' | 'dataDir'> & Partial<Pick<Config, 'env'>>; sandboxGatewayUrl: string | null; demo: DemoData | null }): string {
  const { publicUrl, dataDir } = input.config;
  const demoFile = path.join(dataDir, 'demo.json');
  const lines = [
    '',
    `OneCard is running at ${publicUrl}`,
    `  GraphQL + GraphiQL  ${publicUrl}/graphql`,
    `  health / readiness  ${publicUrl}/healthz  ${publicUrl}/readyz`,
    `  metrics             ${publicUrl}/metrics`,
    ...(input.sandboxGatewayUrl ? [`  sandbox gateway     ${input.sandboxGatewayUrl} (top-ups: pay on its /checkout page, or pass paymentMethod pm_card_visa)`] : []),
  ];
  if (input.demo) {
    const clients = Object.keys((input.demo.clients as Record<string, unknown> | undefined) ?? {});
    const cardholders = ((input.demo.cardholders as { username?: string }[] | undefined) ?? []).map((c) => c.username).filter(Boolean);
    const consoleUsers = Object.values((input.demo.console as { users?: Record<string, { username?: string }> } | undefined)?.users ?? {}).map((u) => u.username).filter(Boolean);
    if (consoleUsers.length) lines.push(`  web console         ${publicUrl}/console/ (sign in as ${consoleUsers.join(', ')}: passwords in demo.json, console.users)`);
    lines.push(
      `  demo credentials    ${demoFile} (mode 600: client ids and secrets of ${clients.join(', ')}; cardholders ${cardholders.join(', ')}; the demo root CA passphrase)`,
      '',
      'Next, try:',
      `  1. a public query:   curl -s ${publicUrl}/graphql -H 'content-type: application/json' -d '{"query":"{ serverInfo { version time } }"}'`,
      // The page's sign-in button exists in development only (api/src/graphql/graphiql.ts).
      input.config.env === 'development'
        ? `  2. GraphiQL:         open ${publicUrl}/graphql and press "Sign in as a demo client" (it fills the Authorization header), then run the starter query`
        : `  2. GraphiQL:         open ${publicUrl}/graphql, sign in as a demo client with a token from demo.json (README, "A first authenticated call")`,
      '  3. a card top-up:    npm run simulate -w examples/reader-simulator -- topup 1500   (then: npm start -w examples/merchant-checkout)',
    );
  } else {
    lines.push('  no demo data (ONECARD_DEMO is off): onboard tenants with the operator CLI, see docs/operations.md');
  }
  lines.push('Ctrl-C stops it (and its embedded PostgreSQL).', '');
  return lines.join('\n');
}
