/**
 * One meaning of `city` across the schema (issue 22 item 5): a City's global id. `settlementWindows`
 * took a city code, and an id given there silently matched nothing. It now takes the id, and the
 * code only until 2027-06-07 (deprecated, docs/api-conventions.md#deprecations); anything else is a
 * clear BAD_USER_INPUT, never an empty answer that looks like "no windows".
 */
import { getNamedType, GraphQLInputObjectType, GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { toGlobalId } from '../src/graphql/global-id.js';
import { apiSchema } from '../src/schema.js';
import { apiClient, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
const DAY = '2026-03-02';

/** A `city` that takes something else than a City id, until the date its old meaning may go. */
const DEPRECATED_CITY_CODES: Record<string, string> = { 'Query.settlementWindows.city': '2027-06-07' };

describe('`city` means a City, by its global id, everywhere', () => {
  it('every argument and input field named city takes an ID (a City’s), but for the deprecated ones still in their 6 months', async () => {
    const schema = await apiSchema();
    const cityInputs: [string, string][] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      if (type instanceof GraphQLObjectType) {
        for (const field of Object.values(type.getFields())) for (const arg of field.args) if (arg.name === 'city') cityInputs.push([`${type.name}.${field.name}.city`, getNamedType(arg.type).name]);
      } else if (type instanceof GraphQLInputObjectType) {
        for (const field of Object.values(type.getFields())) if (field.name === 'city') cityInputs.push([`${type.name}.city`, getNamedType(field.type).name]);
      }
    }
    expect(cityInputs.length).toBeGreaterThan(5);
    const today = new Date().toISOString().slice(0, 10);
    for (const [path, typeName] of cityInputs) {
      const until = DEPRECATED_CITY_CODES[path];
      if (until && today <= until) continue;
      expect(`${path}: ${typeName}`).toBe(`${path}: ID`);
    }
  });

  it('settlementWindows(city:) takes the City’s global id (as billers and merchants do), still the code for now, and refuses what is neither', async () => {
    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['settlements:read', 'settlements:manage']);
    const gzId = toGlobalId('City', world.gz.cityId);
    const closed = await operator.request<{ closeSettlementWindow: { window: { id: string }; userErrors: unknown[] } }>(
      `mutation($input: CloseSettlementWindowInput!) { closeSettlementWindow(input: $input) { window { id } userErrors { code } } }`,
      { input: { city: gzId, businessDay: DAY } },
    );
    expect(closed.closeSettlementWindow.userErrors).toEqual([]);
    const windows = (city: string) =>
      operator.request<{ settlementWindows: { edges: { node: { id: string; city: string; cityCode: string } }[] } }>(`query($city: String) { settlementWindows(city: $city, first: 5) { edges { node { id city cityCode } } } }`, { city });

    // The id names the city: its window comes back, and names its City the same way.
    const byId = await windows(gzId);
    expect(byId.settlementWindows.edges.map((e) => e.node)).toEqual([{ id: closed.closeSettlementWindow.window.id, city: gzId, cityCode: 'GZ' }]);
    // The code, the deprecated meaning, still works for its 6 months.
    expect(await windows('GZ')).toEqual(byId);
    // Another city's id: that city's windows, not GZ's.
    expect((await windows(toGlobalId('City', world.sz.cityId))).settlementWindows.edges.every((e) => e.node.cityCode === 'SZ')).toBe(true);
    // Neither an id nor a code: a clear refusal, not an empty list.
    for (const wrong of ['Guangzhou', toGlobalId('Merchant', world.gz.cityId)]) {
      await expect(windows(wrong)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringMatching(/^`city` takes a City’s global id \(from `cities`\); ".+" is neither a City id nor a city code$/) });
    }
  });
});
