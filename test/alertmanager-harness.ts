/**
 * A real Alertmanager for the end-to-end tests: Debian's `prometheus-alertmanager` package (0.25),
 * started on a free loopback port with a temporary storage directory, clustering off, and the given
 * configuration; plus `amtool check-config`, and a webhook receiver (an HTTP server on a free loopback
 * port) that records what Alertmanager notifies.
 *
 * Nothing here skips: without the binaries the functions throw, saying how to install them
 * (test/setup/debian-packages.sh does, before `npm test`).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startUntilReady } from './prometheus-harness';

export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';
export const AMTOOL_BIN = process.env.AMTOOL_BIN ?? '/usr/bin/amtool';

const INSTALL_HINT =
  "install Debian's package: apt-get install prometheus-alertmanager (npm test does, through " +
  'test/setup/debian-packages.sh), or set ALERTMANAGER_BIN / AMTOOL_BIN';

function requireBinary(bin: string, what: string): void {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} is not installed (${bin} not found or not executable): ${INSTALL_HINT}`);
  }
}

/** `amtool check-config <file>`: its output, and whether it said SUCCESS (exit 0). */
export async function amtoolCheckConfig(file: string): Promise<{ ok: boolean; output: string }> {
  requireBinary(AMTOOL_BIN, 'amtool');
  try {
    const { stdout, stderr } = await promisify(execFile)(AMTOOL_BIN, ['check-config', file], { timeout: 10_000 });
    return { ok: true, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}

export interface Alertmanager {
  /** "127.0.0.1:port", for Prometheus's alerting.alertmanagers targets. */
  address: string;
  url: string;
  /** The alerts Alertmanager holds now (/api/v2/alerts). */
  alerts(): Promise<{ labels: Record<string, string>; status: { state: string } }[]>;
  log(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts Alertmanager with `config` (YAML text) as its configuration file. */
export async function startAlertmanager(config: string, readyTimeoutMs = 20_000): Promise<Alertmanager> {
  requireBinary(ALERTMANAGER_BIN, 'Alertmanager');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-alertmanager-'));
  const configFile = path.join(dir, 'alertmanager.yml');
  fs.writeFileSync(configFile, config);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const url = `http://${address}`;
  const { log, stop } = await startUntilReady({
    name: 'Alertmanager',
    command: ALERTMANAGER_BIN,
    args: [
      `--config.file=${configFile}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=${address}`,
      // One instance, no gossip port.
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    dir,
    readyUrl: `${url}/-/ready`,
    readyTimeoutMs,
  });

  return {
    address,
    url,
    alerts: async () => {
      const res = await fetch(`${url}/api/v2/alerts`, { signal: AbortSignal.timeout(5000) });
      return (await res.json()) as { labels: Record<string, string>; status: { state: string } }[];
    },
    log,
    stop,
  };
}

/** One alert of a webhook notification (Alertmanager's webhook payload, version 4). */
export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookNotification {
  version: string;
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: WebhookAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
}

export interface Webhook {
  /** http://127.0.0.1:port/<path>: Alertmanager's webhook_configs url. */
  url(path: string): string;
  /** Every notification received so far, with the path it was posted to. */
  received: { path: string; body: WebhookNotification }[];
  /** Resolves with the first notification (received before or after the call) that `predicate` accepts. */
  waitFor(
    predicate: (n: WebhookNotification, path: string) => boolean,
    timeoutMs: number,
    describe?: () => Promise<string>,
  ): Promise<WebhookNotification>;
  close(): Promise<void>;
}

/** An HTTP server that answers 200 to every POST and records its JSON body. */
export async function startWebhook(): Promise<Webhook> {
  const received: { path: string; body: WebhookNotification }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    received,
    waitFor: async (predicate, timeoutMs, describe) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find((r) => predicate(r.body, r.path));
        if (hit) return hit.body;
        if (Date.now() > until) {
          throw new Error(
            `no matching webhook notification within ${timeoutMs} ms; received: ${JSON.stringify(received)}\n${
              describe ? await describe() : ''
            }`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
