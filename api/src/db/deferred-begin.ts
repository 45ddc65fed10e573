import type pg from 'pg';

/**
 * Sends a transaction's `begin` with its first statement, in one round trip (issue 20: on this
 * platform a round trip to PostgreSQL, not the work in it, is what a request pays for most; every
 * transaction paid one just to open).
 *
 * The ORM opens a transaction with a `begin` of its own and waits for the answer. On a client
 * patched here, that `begin` is only remembered, and answered at once; the next statement goes as
 * `begin; <statement>` in one simple query, which PostgreSQL runs in order on the same session, and
 * its own result is returned. The transaction's meaning is the same: the snapshot of a read
 * committed statement is taken by the statement, not by `begin`. When the first statement carries
 * bound parameters (the extended protocol allows one statement per query), or is a cursor, the
 * `begin` goes ahead of it as before; a transaction with no statement at all never reaches the server, and its
 * `commit` or `rollback` is answered at once.
 *
 * A failure of the first statement fails its query as before, and leaves the transaction open and
 * aborted, which the ORM's rollback then closes (one more round trip on that failure, to make sure
 * of it: see below).
 */
export function deferBegin(client: pg.Client): void {
  const send = client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult | pg.QueryResult[]>;
  let opening: string | undefined;
  const answered = (command: string): pg.QueryResult => ({ command, rowCount: null, oid: 0, rows: [], fields: [] });

  client.query = ((config: unknown, values?: unknown, callback?: unknown) => {
    if (typeof values === 'function' || callback !== undefined) return send(config, values, callback); // the callback form: not the ORM's
    const text = typeof config === 'string' ? config.trim() : undefined;
    const bare = text !== undefined && (values === undefined || (Array.isArray(values) && values.length === 0));
    if (bare && opening === undefined && /^(begin|start transaction)\b[\w\s]*$/i.test(text!)) {
      opening = text;
      return Promise.resolve(answered('BEGIN'));
    }
    if (opening === undefined) return send(config, values);
    const begin = opening;
    opening = undefined;
    if (bare && /^(commit|rollback|end|abort)$/i.test(text!)) return Promise.resolve(answered(text!.toUpperCase()));
    if (!bare) {
      // Queued behind the begin on the same connection (the client sends one query at a time, in
      // order); a submittable (a cursor) is returned as it is, as its caller reads it at once.
      send(begin).catch(() => undefined); // a broken connection fails the statement behind it too
      return send(config, values);
    }
    const prefix = `${begin}; `;
    return send(prefix + text).then(
      (results) => {
        // One result per statement: the begin's, then the statement's (or the statements', for a script).
        const [, ...rest] = results as pg.QueryResult[];
        return rest.length === 1 ? rest[0]! : rest;
      },
      async (err: unknown) => {
        // PostgreSQL parses the whole text before it runs any of it: a statement that does not
        // parse fails before the begin has run, and what the caller does next would commit on its
        // own. A second begin tells: refused (the transaction is open and aborted), the first ran;
        // taken, it had not, and the statement is sent again inside it, to fail as it did.
        const beganBefore = await send(begin).then(
          () => false,
          () => true,
        );
        if (!beganBefore) return send(text, values);
        // Where the error is, in the caller's text rather than in ours.
        const failed = err as { position?: unknown };
        if (typeof failed.position === 'string' && Number(failed.position) > prefix.length) failed.position = String(Number(failed.position) - prefix.length);
        throw err;
      },
    );
  }) as typeof client.query;
}
