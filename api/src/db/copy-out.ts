import { createWriteStream } from 'node:fs';
import pg from 'pg';

/** `COPY … TO STDOUT` into a file, on a connection of its own (the pg driver hands each chunk of data to the query). */
export async function copyOut(url: string, sql: string, file: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const out = createWriteStream(file, { flags: 'wx' });
  try {
    await new Promise<void>((resolve, reject) => {
      let failed: unknown;
      const submittable = {
        submit(connection: { query(text: string): void }) {
          connection.query(sql);
        },
        handleCopyData(msg: { chunk: Buffer }, connection: { stream: NodeJS.ReadableStream }) {
          // The file is slower than the socket: stop reading until it has caught up.
          if (!out.write(msg.chunk)) {
            connection.stream.pause();
            out.once('drain', () => connection.stream.resume());
          }
        },
        handleCommandComplete() {},
        handleError(err: unknown) {
          failed = err;
        },
        handleReadyForQuery() {
          if (failed) reject(failed);
          else resolve();
        },
      };
      client.query(submittable as unknown as pg.QueryConfig);
    });
  } finally {
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await client.end();
  }
}
