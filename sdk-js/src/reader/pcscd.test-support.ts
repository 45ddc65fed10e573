/**
 * A real pcscd for a test file, with one virtual reader (vsmartcard's vpcd) on a free port: what
 * the PC/SC tests run against instead of a reader on a desk. Needs Debian's `pcscd` and
 * `vsmartcard-vpcd` (`.ci/run` installs them) and root (pcscd owns /run/pcscd). pcscd's socket is
 * one per machine, so test files take turns: a lock directory held for the file's duration.
 *
 * A PC/SC call that blocks its thread (listing readers, disconnecting, releasing the context) waits
 * on pcscd; if pcscd waits on something only that thread could do, the test would hang past every
 * vitest time limit. A watchdog process beside pcscd ends that: when the test process stops
 * beating for {@link BLOCKED_LIMIT_MS}, or dies, the watchdog stops pcscd, which frees the blocked
 * call with an error (the test fails and says why), and a killed run leaves no pcscd behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
const LOCK = path.join(os.tmpdir(), 'onecard-pcscd.lock');
const PID_FILE = '/run/pcscd/pcscd.pid';
/** The pcscd this support starts: found by its configuration folder. */
const OUR_PCSCD = /--config \/\S*onecard-pcscd-/;
/** How long the test process may go without running JavaScript before its pcscd is stopped. */
export const BLOCKED_LIMIT_MS = 60_000;
/** How long a test file waits for another's pcscd before it gives up and names the holder. */
const LOCK_WAIT_MS = 10 * 60_000;

/** What this machine lacks to run the PC/SC tests, or undefined when it has it all. */
export function pcscMissing(): string | undefined {
  const missing: string[] = [];
  if (!findOnPath('pcscd')) missing.push('pcscd (apt-get install pcscd)');
  if (!existsSync(VPCD_DRIVER)) missing.push(`vpcd's driver ${VPCD_DRIVER} (apt-get install vsmartcard-vpcd)`);
  if (process.getuid?.() !== 0) missing.push('root (pcscd writes /run/pcscd)');
  return missing.length ? `the PC/SC tests need ${missing.join(', ')}; .ci/run installs them` : undefined;
}

function findOnPath(program: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => existsSync(path.join(dir, program))) || existsSync(`/usr/sbin/${program}`);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function takeLock(): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch {
      const holder = Number(readFileSafe(path.join(LOCK, 'pid')));
      // A test run that died keeps no lock; nor does one that died before writing its pid.
      if ((holder && !alive(holder)) || (!holder && ageMs(LOCK) > 10_000)) {
        rmSync(LOCK, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`the PC/SC tests' lock ${LOCK} has been held by pid ${holder} (${commandOf(holder)}) for over ${LOCK_WAIT_MS / 60_000} min: if that run is stuck, stop it`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const ageMs = (file: string) => {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
};

const commandOf = (pid: number) => readFileSafe(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').trim() || 'gone';

/**
 * A watchdog beside pcscd (a process of its own, so a blocked test cannot block it): the test
 * writes to its stdin every second; silence for the limit, or the pipe closing without "stop", and
 * it stops pcscd.
 */
const WATCHDOG = `
const [pcscd, limit] = process.argv.slice(1).map(Number);
let last = Date.now();
let stopping = false;
const kill = (why) => {
  try { process.kill(pcscd, 'SIGKILL'); console.error('[pcscd watchdog] ' + why + ': pcscd (pid ' + pcscd + ') stopped'); } catch {}
  process.exit(0);
};
process.stdin.on('data', (d) => { last = Date.now(); if (String(d).includes('stop')) stopping = true; });
process.stdin.on('end', () => (stopping ? process.exit(0) : kill('the test process ended without stopping its pcscd')));
setInterval(() => { if (Date.now() - last > limit) kill('the test process ran no JavaScript for ' + limit / 1000 + ' s (a PC/SC call blocked it)'); }, 1000);
`;

function watch(pcscd: ChildProcess, blockedLimitMs: number): () => void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(pcscd.pid), String(blockedLimitMs)], { stdio: ['pipe', 'inherit', 'inherit'] });
  watchdog.stdin!.on('error', () => undefined);
  const beat = setInterval(() => watchdog.stdin!.write('.'), 1000);
  beat.unref();
  watchdog.unref();
  return () => {
    clearInterval(beat);
    watchdog.stdin!.end('stop');
  };
}

/**
 * Stops a pcscd of ours that outlived the run that started it (a run killed before it could stop
 * it): only lock holders start one, and we hold the lock now.
 */
function stopLeftoverPcscd(pid: number): boolean {
  if (!OUR_PCSCD.test(commandOf(pid))) return false;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
  return true;
}

const readFileSafe = (file: string) => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
};

async function freePort(): Promise<number> {
  // vpcd listens on the port and the next one (its second slot): find two free in a row.
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
      s.on('error', reject);
    });
    if (port < 65000 && (await canListen(port + 1))) return port;
  }
}

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer().listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    s.on('error', () => resolve(false));
  });

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

export interface TestPcscd {
  /** The port vpcd waits on for a card (VpcdCard.insert({ port })). */
  port: number;
  /** The reader's name as PC/SC lists it (first slot). */
  readerName: string;
  /** What pcscd printed (APDUs included, `-a`): a failing test shows it. */
  log(): string;
  /** Whether pcscd still runs (its watchdog may have stopped it). */
  running(): boolean;
  /** Resolves once pcscd has exited. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** Starts pcscd with a vpcd reader of its own; throws with what is missing where it cannot. */
export async function startPcscd(options: { blockedLimitMs?: number } = {}): Promise<TestPcscd> {
  const missing = pcscMissing();
  if (missing) throw new Error(missing);
  await takeLock();
  const existing = Number(readFileSafe(PID_FILE));
  if (existing && alive(existing) && stopLeftoverPcscd(existing)) {
    for (let i = 0; alive(existing) && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
  }
  if (existing && alive(existing)) {
    rmSync(LOCK, { recursive: true, force: true });
    throw new Error(`another pcscd (pid ${existing}) already runs on this machine; the PC/SC tests start their own (with a vpcd reader on a port of theirs): stop it first`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onecard-pcscd-'));
  const port = await freePort();
  const name = 'OneCard Test PCD';
  writeFileSync(path.join(dir, 'vpcd'), `FRIENDLYNAME "${name}"\nDEVICENAME   /dev/null:${port}\nLIBPATH      ${VPCD_DRIVER}\nCHANNELID    ${port}\n`);
  let output = '';
  const child: ChildProcess = spawn('pcscd', ['--foreground', '--apdu', '--config', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const unwatch = watch(child, options.blockedLimitMs ?? BLOCKED_LIMIT_MS);
  const stop = async () => {
    unwatch();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(LOCK, { recursive: true, force: true });
  };
  // pcscd is ready once its reader driver listens for a card.
  for (let i = 0; !(await listening(port)); i++) {
    if (child.exitCode !== null || i > 200) {
      await stop();
      throw new Error(`pcscd did not start its vpcd reader on port ${port}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, readerName: name, log: () => output, running: () => child.exitCode === null && child.signalCode === null, exited, stop };
}
