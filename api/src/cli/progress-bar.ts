/**
 * Progress of a command by stages, on stderr so that stdout stays the command's answer.
 *
 * On a terminal: one bar redrawn in place (`[#####-----] 2/6 clearing GZ 2026-03-02  1.4 s`), its
 * clock and spinner kept moving while a long stage runs (a stage that is one SQL transaction has no
 * finer progress to show). Anywhere else (a pipe, a log file, CI): plain lines, one when a stage
 * starts and one with its result, so a log shows where a slow or stuck run was.
 */

/** The part of a stream the bar writes to: process.stderr, or a test double. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** What every plain line starts with, e.g. `settle`. */
  title: string;
  /** Stages expected; may grow with setTotal() once known. */
  total: number;
  stream?: ProgressStream;
  /** Draw the bar; by default when the stream is a terminal. */
  tty?: boolean;
  /** Redraw interval of the terminal bar, in ms. */
  tickMs?: number;
  /** The clock, in ms (tests). */
  now?: () => number;
}

export interface Progress {
  /** Stages now expected in all (a command learns of more stages as it goes). */
  setTotal(total: number): void;
  /** Starts the next stage; ends the previous one if it was not ended. */
  start(label: string): void;
  /** Ends the current stage, with what it did (`42 items assigned`). */
  done(result?: string): void;
  /** Runs `work` as one stage; its result line is `describe(value)`. */
  run<T>(label: string, work: () => Promise<T>, describe?: (value: T) => string): Promise<T>;
  /** Ends the bar (on a terminal: leaves the finished bar on its own line). Safe to call twice. */
  finish(): void;
}

const SPINNER = ['|', '/', '-', '\\'];

function seconds(ms: number): string {
  return `${(Math.max(ms, 0) / 1000).toFixed(1)} s`;
}

/** A bar of `width` cells, `filled` of them done: `#####-----`. */
export function bar(done: number, total: number, width: number): string {
  const filled = total <= 0 ? width : Math.min(width, Math.floor((Math.min(done, total) * width) / total));
  return `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const now = opts.now ?? Date.now;
  let total = Math.max(opts.total, 0);
  let index = 0; // stages started
  let completed = 0; // stages ended
  let label: string | null = null;
  let startedAt = 0;
  let lastResult = '';
  let spin = 0;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const began = now();

  const line = () => {
    const counter = `${Math.min(completed + (label ? 1 : 0), total)}/${total}`;
    const what = label ? `${SPINNER[spin % SPINNER.length]} ${label}  ${seconds(now() - startedAt)}` : lastResult;
    const text = `${opts.title} [${bar(completed, total, 20)}] ${counter} ${what}`;
    const columns = stream.columns && stream.columns > 10 ? stream.columns - 1 : 0;
    return columns && text.length > columns ? `${text.slice(0, columns - 1)}…` : text;
  };
  const draw = () => {
    if (tty && !finished) stream.write(`\r\x1b[2K${line()}`);
  };

  const progress: Progress = {
    setTotal(n) {
      total = Math.max(n, index);
      draw();
    },
    start(next) {
      if (finished) return;
      if (label) progress.done();
      index += 1;
      if (index > total) total = index;
      label = next;
      startedAt = now();
      if (tty) {
        if (!timer) {
          timer = setInterval(() => {
            spin += 1;
            draw();
          }, opts.tickMs ?? 100);
          timer.unref();
        }
        draw();
      } else {
        stream.write(`${opts.title}: [${index}/${total}] ${next} ...\n`);
      }
    },
    done(result) {
      if (!label || finished) return;
      const took = seconds(now() - startedAt);
      lastResult = `${label}${result ? `: ${result}` : ''}`;
      if (!tty) stream.write(`${opts.title}: [${index}/${total}] ${lastResult} (${took})\n`);
      label = null;
      completed += 1;
      draw();
    },
    async run(next, work, describe) {
      progress.start(next);
      const value = await work();
      progress.done(describe?.(value));
      return value;
    },
    finish() {
      if (finished) return;
      if (timer) clearInterval(timer);
      timer = undefined;
      if (tty) {
        // A stage that failed is left as it was: the bar shows where it stopped.
        stream.write(`\r\x1b[2K${line()}  (${seconds(now() - began)})\n`);
      }
      finished = true;
    },
  };
  return progress;
}
