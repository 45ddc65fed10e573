import nock from 'nock';
import { afterEach, beforeEach, expect } from 'vitest';

/**
 * The outside payment gateway, mocked with nock for every test of the file: no other host is
 * reached (the test server on 127.0.0.1 is), and a test fails if a gateway call it mocked was
 * never made.
 */
export function useMockedGateway(): void {
  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(() => {
    const pending = nock.pendingMocks();
    nock.cleanAll();
    nock.enableNetConnect();
    expect(pending, 'every mocked gateway call was made').toEqual([]);
  });
}
