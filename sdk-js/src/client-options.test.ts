/**
 * A client built from a config file that lacks a value (say demo.json without `publicUrl`) names the
 * missing option instead of failing inside `new URL` with "Invalid URL … input: 'undefined'".
 */
import { describe, expect, it } from 'vitest';
import { OneCardClient, type OneCardClientOptions } from './index.js';

const build = (options: Partial<Record<keyof OneCardClientOptions, unknown>>) => () => new OneCardClient(options as unknown as OneCardClientOptions);

describe('OneCardClient names the option that is missing or wrong', () => {
  it.each([
    ['baseUrl missing', { clientId: 'oc_x', clientSecret: 's' }, /OneCardClient: baseUrl is required \(where the API is served, e\.g\. https:\/\/api\.onecard\.example/],
    ['baseUrl empty', { baseUrl: '', clientId: 'oc_x', clientSecret: 's' }, /OneCardClient: baseUrl is required/],
    ['baseUrl not a URL', { baseUrl: 'localhost:4000', clientId: 'oc_x', clientSecret: 's' }, /OneCardClient: baseUrl must be an absolute http\(s\) URL, got "localhost:4000"/],
    ['clientId missing', { baseUrl: 'http://127.0.0.1:4000', clientSecret: 's' }, /OneCardClient: clientId is required/],
    ['clientSecret not a string', { baseUrl: 'http://127.0.0.1:4000', clientId: 'oc_x', clientSecret: 42 }, /OneCardClient: clientSecret must be a string/],
    ['a secret and an access token', { baseUrl: 'http://127.0.0.1:4000', clientId: 'oc_x', clientSecret: 's', accessToken: () => ({}) }, /OneCardClient: give exactly one of clientSecret and privateKey \(client credentials\), or accessToken/],
    ['accessToken not a function', { baseUrl: 'http://127.0.0.1:4000', clientId: 'oc_x', accessToken: 'eyJ…' }, /OneCardClient: accessToken must be a function that gives the token/],
  ])('%s', (_case, options, message) => {
    const make = build(options);
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
    expect(make).not.toThrow(/Invalid URL/);
  });

  it('a complete set of options builds a client', () => {
    expect(build({ baseUrl: 'http://127.0.0.1:4000', clientId: 'oc_x', clientSecret: 's' })).not.toThrow();
  });
});
