import type { PaymentIntent } from './gateway-client.js';

/*
 * The sandbox's hosted checkout page, for a person trying a top-up by hand: one self-contained
 * HTML page (no scripts, no external resources) that pays or declines a payment intent with a
 * test card.
 */

/** The Content-Security-Policy the page is served with: it loads nothing and posts only to itself. */
export const CHECKOUT_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** 1234 fen → "12.34 CNY", using the currency's own number of decimals (0 for JPY). */
export function formatAmount(amount: number, currency: string): string {
  const code = currency.toUpperCase();
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    // An unknown code: show two decimals.
  }
  const whole = String(amount).padStart(digits + 1, '0');
  const major = digits === 0 ? whole : `${whole.slice(0, -digits)}.${whole.slice(-digits)}`;
  return `${major} ${code}`;
}

export type CheckoutOutcome = { kind: 'paid' } | { kind: 'declined'; message: string } | { kind: 'refused'; message: string };

function payForm(intentId: string, paymentMethod: string, label: string): string {
  return `<form method="post" action="/checkout/${encodeURIComponent(intentId)}">
      <input type="hidden" name="payment_method" value="${escapeHtml(paymentMethod)}">
      <button type="submit">${escapeHtml(label)}</button>
    </form>`;
}

function outcomeText(intent: PaymentIntent, outcome: CheckoutOutcome | undefined): string {
  if (outcome?.kind === 'paid') return '<p class="ok">Payment succeeded. You can close this page.</p>';
  if (outcome?.kind === 'declined') return `<p class="bad">Payment declined: ${escapeHtml(outcome.message)}</p>`;
  if (outcome?.kind === 'refused') return `<p class="bad">${escapeHtml(outcome.message)}</p>`;
  if (intent.status === 'succeeded') return '<p class="ok">This payment has already succeeded.</p>';
  if (intent.status === 'canceled') return '<p class="bad">This payment was canceled.</p>';
  return '';
}

/** The page for one intent: its amount, the outcome of the last attempt if any, and the test-card buttons while it can still be paid. */
export function checkoutPage(intent: PaymentIntent, outcome?: CheckoutOutcome): string {
  const payable = intent.status === 'requires_payment_method' || intent.status === 'requires_confirmation';
  const forms = payable ? `${payForm(intent.id, 'pm_card_visa', 'Pay with test card')}\n    ${payForm(intent.id, 'pm_card_chargeDeclined', 'Decline')}` : '';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sandbox checkout</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
    .amount { font-size: 2rem; margin: 0.5rem 0; }
    form { display: inline-block; margin-right: 0.5rem; }
    button { font-size: 1rem; padding: 0.5rem 1rem; cursor: pointer; }
    .ok { color: #16692c; } .bad { color: #a01818; } .muted { color: #777; font-size: 0.85rem; }
  </style>
</head>
<body>
  <h1>Sandbox checkout</h1>
  <p class="amount">${escapeHtml(formatAmount(intent.amount, intent.currency))}</p>
  ${intent.description ? `<p>${escapeHtml(intent.description)}</p>` : ''}
  ${outcomeText(intent, outcome)}
  <div>
    ${forms}
  </div>
  <p class="muted">Payment ${escapeHtml(intent.id)} · a test gateway: no real money moves.</p>
</body>
</html>
`;
}

/** The page for an intent that does not exist. */
export function checkoutNotFoundPage(intentId: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox checkout</title></head>
<body><h1>Sandbox checkout</h1><p>No such payment: ${escapeHtml(intentId)}</p></body></html>
`;
}
