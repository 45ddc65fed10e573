// The demo card in a virtual PC/SC reader, for `simulate --pcsc` without a card on a desk:
//   apt-get install pcscd vsmartcard-vpcd   (vpcd: a pcscd reader waiting for a card on TCP 35963)
//   npm run vpcd-card -w examples/reader-simulator -- [--port 35963] [--t0]
// Keeps the card in the reader until Ctrl-C (taking it out); --t0 makes it answer as a contact card
// on T=0 does (61xx, its answers in pieces). The card's state is saved in demo-card-state.json after
// every command, the file `simulate` (without --pcsc) uses, so both see the same card.
import fs from 'node:fs/promises';
import path from 'node:path';
import { T0_ATR, T0Card, T1_ATR, VPCD_DEFAULT_PORT, VirtualCpuCard, VpcdCard } from '@onecard/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const args = process.argv.slice(2);
const portAt = args.indexOf('--port');
const port = portAt >= 0 ? Number(args[portAt + 1]) : VPCD_DEFAULT_PORT;
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: vpcd-card [--port <vpcd port>] [--t0]');
  process.exit(2);
}
const t0 = args.includes('--t0');

const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
const stateFile = path.join(dataDir, 'demo-card-state.json');
const saved = await fs.readFile(stateFile, 'utf8').catch(() => undefined);
const card = saved ? VirtualCpuCard.fromJSON(JSON.parse(saved)) : VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));

/** The card answers, then its state is on disk before the answer leaves: what a chip's EEPROM does. */
const persisted = {
  async transmit(apdu) {
    const response = card.transmit(apdu);
    await fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });
    return response;
  },
};

const inserted = await VpcdCard.insert({
  port,
  card: t0 ? new T0Card(persisted, { chunk: 8 }) : persisted,
  atr: t0 ? T0_ATR : T1_ATR,
  onExchange: (apdu, response) => console.log(`  > ${Buffer.from(apdu).toString('hex')}\n  < ${Buffer.from(response).toString('hex')}`),
});
console.log(`card ${card.asn} in the vpcd reader on port ${port}${t0 ? ' (T=0)' : ''}; Ctrl-C takes it out`);
const takeOut = async () => {
  await inserted.remove();
  process.exit(0);
};
process.on('SIGINT', takeOut);
process.on('SIGTERM', takeOut);
