// The checkout page: a few lines of plain JS, talking only to the shop's back end.
'use strict';

const $ = (id) => document.getElementById(id);
const STATUS_TEXT = {
  CREATING: 'Creating the payment…',
  AWAITING_CARD: 'Waiting for the card',
  PAID: 'Paid',
  FAILED: 'Payment failed',
  CANCELED: 'Canceled',
};
// One id per checkout: pressing Pay twice (or a retry) makes one order and one payment.
const checkoutId = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
let order = null;

async function api(method, url, body) {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(data?.error ?? `HTTP ${res.status}`);
  return data;
}

function cart() {
  const items = {};
  let total = 0;
  for (const row of document.querySelectorAll('#cart tbody tr')) {
    const qty = Math.max(0, Math.min(20, Math.floor(Number(row.querySelector('input').value) || 0)));
    if (qty > 0) items[row.dataset.sku] = qty;
    total += qty * Number(row.dataset.price);
  }
  return { items, total };
}

function showError(id, err) {
  $(id).textContent = err ? err.message : '';
  $(id).hidden = !err;
}

function showOrder(o) {
  order = o;
  $('order').hidden = false;
  $('order-id').textContent = o.id;
  $('payment-id').textContent = o.payment ?? '';
  $('order-amount').textContent = (o.amount / 100).toFixed(2);
  const status = $('order-status');
  status.dataset.status = o.status;
  status.textContent = STATUS_TEXT[o.status] + (o.failureCode ? ` (${o.failureCode})` : '');
  $('order-hint').hidden = o.status !== 'AWAITING_CARD';
  $('order-events').replaceChildren(...(o.events.length ? o.events.map((e) => Object.assign(document.createElement('li'), { textContent: e })) : [Object.assign(document.createElement('li'), { textContent: 'none yet', className: 'none' })]));
  $('holder').hidden = o.status !== 'AWAITING_CARD' && !$('reader-log').children.length;
  $('tap').disabled = o.status !== 'AWAITING_CARD';
}

async function poll() {
  try {
    showOrder(await api('GET', `/api/orders/${encodeURIComponent(order.id)}`));
  } catch {
    // keep polling: the shop may be restarting
  }
  if (['AWAITING_CARD', 'CREATING'].includes(order.status)) setTimeout(poll, 700);
}

$('cart').addEventListener('input', () => {
  $('total').textContent = (cart().total / 100).toFixed(2);
});

$('pay').addEventListener('click', async () => {
  const { items } = cart();
  $('pay').disabled = true;
  showError('shop-error', null);
  try {
    showOrder(await api('POST', '/api/checkout', { checkout: checkoutId, items }));
    for (const input of document.querySelectorAll('#cart input')) input.disabled = true;
    poll();
  } catch (err) {
    showError('shop-error', err);
    $('pay').disabled = false;
  }
});

$('tap').addEventListener('click', async () => {
  const log = $('reader-log');
  const line = (text, className = '') => log.append(Object.assign(document.createElement('li'), { textContent: text, className }));
  $('tap').disabled = true;
  line('Card on the reader…');
  try {
    const tapped = await api('POST', '/holder/tap', { payment: order.payment });
    for (const step of tapped.steps) line(step);
    line(tapped.state === 'COMPLETED' ? 'Done: the shop will hear it from OneCard.' : `Refused: ${tapped.refusal}`, tapped.state === 'COMPLETED' ? 'ok' : 'error');
  } catch (err) {
    line(err.message, 'error');
  }
  $('tap').disabled = order.status !== 'AWAITING_CARD';
});

api('GET', '/holder')
  .then((h) => {
    $('card-asn').textContent = h.asn.replace(/(\d{4})(?=\d)/g, '$1 ');
  })
  .catch(() => {});
