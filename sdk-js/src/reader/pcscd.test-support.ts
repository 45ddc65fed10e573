/**
 * A real pcscd for a test file, with one virtual reader (vsmartcard's vpcd) on a free port: what
 * the PC/SC tests run against instead of a reader on a desk. Needs Debian's `pcscd` and
 * `vsmartcard-vpcd` (`.ci/run` installs them) and root (pcscd owns /run/pcscd). pcscd's socket is
 * one per machine, so test files take turns: a lock directory held for the file's duration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';
const LOCK = path.join(os.tmpdir(), 'onecard-pcscd.lock');
const PID_FILE = '/run/pcscd/pcscd.pid';

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
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch {
      const holder = Number(readFileSafe(path.join(LOCK, 'pid')));
      // A test run that died keeps no lock.
      if (holder && !alive(holder)) rmSync(LOCK, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
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
  stop(): Promise<void>;
}

/** Starts pcscd with a vpcd reader of its own; throws with what is missing where it cannot. */
export async function startPcscd(): Promise<TestPcscd> {
  const missing = pcscMissing();
  if (missing) throw new Error(missing);
  await takeLock();
  const existing = Number(readFileSafe(PID_FILE));
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
  const stop = async () => {
    if (child.exitCode === null) {
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
  return { port, readerName: name, log: () => output, stop };
}
