/**
 * The Chromium every browser test launches: `npm install && npm test` must work on a machine with
 * no browser installed by hand, so the fallback is the Chromium shipped inside the
 * `@sparticuz/chromium` npm package (brotli-compressed, unpacked once per version into
 * `$TMPDIR/onecard-chromium-<version>`).
 *
 * Which one, in this order:
 * - `CHROMIUM_PATH`: that executable;
 * - `ONECARD_TEST_BROWSER=package`: the package's Chromium even when the machine has one (`.ci/run`
 *   uses it to prove the fresh-machine path);
 * - `/usr/bin/chromium` when present (Debian's `chromium` package);
 * - otherwise the package's Chromium.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium } from 'playwright-core';

const SYSTEM_CHROMIUM = '/usr/bin/chromium';
/** What every test needs on a CI container: no setuid sandbox (root), /dev/shm is often 64 MB. */
const COMMON_ARGS = ['--no-sandbox', '--disable-dev-shm-usage'];

const LAMBDA_ONLY_FLAGS = ['--single-process', '--disable-web-security', '--allow-running-insecure-content'];

export interface ResolvedChromium {
  executablePath: string;
  /** `system` for a Chromium on the machine, `package` for the one unpacked from @sparticuz/chromium. */
  source: 'system' | 'package';
  args: string[];
  env: Record<string, string>;
}

const require = createRequire(import.meta.url);
// Its `exports` hide package.json: go up from the entry point (build/index.js).
const packageDir = () => path.resolve(path.dirname(require.resolve('@sparticuz/chromium')), '..');

/**
 * Unpacks the package's Chromium (binary, SwiftShader, the NSS libraries it links against, which a
 * bare Debian lacks, and a font) into a folder of its own. A child process does it with TMPDIR set
 * to a staging folder (the package unpacks into os.tmpdir()), then the folder is renamed into place,
 * so test files unpacking at the same moment never see half a binary.
 */
async function unpackPackageChromium(): Promise<string> {
  const dir = packageDir();
  const { version } = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { version: string };
  const target = path.join(os.tmpdir(), `onecard-chromium-${version}`);
  if (existsSync(path.join(target, 'chromium'))) return target;
  const staging = `${target}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await fs.mkdir(staging, { recursive: true });
  const script = `
    const { default: Chromium, inflate } = await import('@sparticuz/chromium');
    await Chromium.executablePath();
    await inflate(${JSON.stringify(path.join(dir, 'bin', 'al2023.tar.br'))});`;
  try {
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: { ...process.env, TMPDIR: staging }, maxBuffer: 1 << 20 });
    // The package's fonts.conf names /tmp/fonts; ours names the unpacked folder.
    await fs.writeFile(
      path.join(staging, 'fonts', 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${target}/fonts/fonts</dir>\n  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n  <cachedir>${target}/fonts-cache</cachedir>\n</fontconfig>\n`,
    );
    await fs.rename(staging, target);
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true });
    // Another test file won the race: its folder is complete.
    if (!existsSync(path.join(target, 'chromium'))) throw err;
  }
  return target;
}

/** Which Chromium to launch, and how (see the file comment). */
export async function resolveChromium(env: NodeJS.ProcessEnv = process.env): Promise<ResolvedChromium> {
  if (env.CHROMIUM_PATH) return { executablePath: env.CHROMIUM_PATH, source: 'system', args: COMMON_ARGS, env: {} };
  if (env.ONECARD_TEST_BROWSER !== 'package' && existsSync(SYSTEM_CHROMIUM)) return { executablePath: SYSTEM_CHROMIUM, source: 'system', args: COMMON_ARGS, env: {} };
  const dir = await unpackPackageChromium();
  const { default: Sparticuz } = await import('@sparticuz/chromium');
  // The package's recommended flags (made for AWS Lambda), minus: --headless (playwright sets it);
  // --single-process (a second page, GraphiQL's, never loads under it); the flags that switch off
  // the same-origin policy and mixed-content blocking (tests check what a real browser enforces).
  const recommended = Sparticuz.args.filter((a) => !a.startsWith('--headless') && !LAMBDA_ONLY_FLAGS.includes(a));
  return {
    executablePath: path.join(dir, 'chromium'),
    source: 'package',
    args: [...new Set([...recommended, ...COMMON_ARGS])],
    env: {
      LD_LIBRARY_PATH: [path.join(dir, 'al2023', 'lib'), dir, env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      FONTCONFIG_PATH: path.join(dir, 'fonts'),
    },
  };
}

/** A headless Chromium for a test file; close it in afterAll. */
export async function launchBrowser(): Promise<Browser> {
  const resolved = await resolveChromium();
  return chromium.launch({ executablePath: resolved.executablePath, args: resolved.args, env: { ...process.env, ...resolved.env } as Record<string, string> });
}
