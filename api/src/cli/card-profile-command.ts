import fs from 'node:fs/promises';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { Orm } from '../db/orm.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { profileAsText, profileFromText } from '../readers/session/card-profile.js';
import { CardProfileRefused, profilesOf, setCardProfile } from '../readers/session/card-profile.service.js';

type WithOrm = <T>(work: (orm: Orm, config: Config) => Promise<T>) => Promise<T>;

const cardCompanyId = (id: string) => (/^[0-9a-f-]{36}$/i.test(id) ? id.toLowerCase() : fromGlobalId(id, 'CardCompany').id);

async function companyExists(orm: Orm, id: string): Promise<boolean> {
  const [company] = await orm.em.fork().execute<{ id: string }[]>(`select id from card_company where id = ?`, [cardCompanyId(id)]);
  return company !== undefined;
}

function notFound() {
  console.error('NOT_FOUND: no such card company');
  process.exitCode = 1;
}

/**
 * `onecard card-profile`: a card company's card profiles (docs/cards.md, "Card profiles"), shown as
 * the JSON `set` takes, so one can be shown, edited and set again. A refused profile is its
 * problems and exit code 1; nothing is written.
 */
export function cardProfileCommand(withOrm: WithOrm): Command {
  const profiles = new Command('card-profile').description('card companies’ card profiles: AIDs, key indexes, algorithm ids, files, M1 layout, tolerated warnings');
  profiles
    .command('show')
    .description('print the card company’s profiles (its own first, then its products’) as JSON')
    .requiredOption('--card-company <id>', 'global id (or uuid) of the CardCompany')
    .action(async (opts: { cardCompany: string }) => {
      const all = await withOrm(async (orm) => ((await companyExists(orm, opts.cardCompany)) ? profilesOf(orm.em.fork(), cardCompanyId(opts.cardCompany)) : null));
      if (!all) return notFound();
      console.log(JSON.stringify(all.map(profileAsText), null, 2));
    });
  profiles
    .command('set')
    .description('set the card company’s profile, or a product’s (with "product"), whole, from a JSON file as `show` prints one')
    .requiredOption('--card-company <id>', 'global id (or uuid) of the CardCompany')
    .requiredOption('--file <file>', 'the profile, JSON')
    .action(async (opts: { cardCompany: string; file: string }) => {
      let text: unknown;
      try {
        text = JSON.parse(await fs.readFile(opts.file, 'utf8'));
      } catch (err) {
        console.error(`INVALID_INPUT: ${opts.file} is not a JSON profile (${(err as Error).message})`);
        process.exitCode = 1;
        return;
      }
      try {
        const stored = await withOrm(async (orm) => ((await companyExists(orm, opts.cardCompany)) ? setCardProfile(orm.em.fork(), cardCompanyId(opts.cardCompany), profileFromText(text)) : null));
        if (!stored) return notFound();
        console.log(JSON.stringify(profileAsText(stored), null, 2));
      } catch (err) {
        if (!(err instanceof CardProfileRefused)) throw err;
        for (const p of err.problems) console.error(`${p.code} ${p.field.join('.')}: ${p.message}`);
        process.exitCode = 1;
      }
    });
  return profiles;
}
