/**
 * Test certificates (also used by packages/node and the end-to-end tests in test/), made at test time with the openssl CLI (no key is committed): a CA, a server
 * certificate for 127.0.0.1 / localhost signed by it, and client certificates for mutual TLS.
 * EC P-256 keys, so that making them takes milliseconds.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const OPENSSL = process.env.OPENSSL_BIN ?? '/usr/bin/openssl';

export interface Pem {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** File paths. */
  ca: { cert: string; key: string };
  server: Pem;
  client: Pem;
  /** Read a file as a Buffer. */
  read(file: string): Buffer;
  /** A new CA in `name`.crt/.key. */
  newCa(name: string): { cert: string; key: string };
  /** A new leaf certificate `name`.crt/.key signed by `ca` (default: the first CA). */
  newLeaf(name: string, usage: 'server' | 'client', ca?: { cert: string; key: string }): Pem;
  cleanup(): void;
}

const CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = Sonde test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

export function makePki(): TestPki {
  try {
    fs.accessSync(OPENSSL, fs.constants.X_OK);
  } catch {
    throw new Error(`the TLS tests need the openssl CLI at ${OPENSSL} (apt-get install openssl, or set OPENSSL_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sonde-pki-'));
  const config = path.join(dir, 'openssl.cnf');
  fs.writeFileSync(config, CONFIG);
  const ssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const newCa = (name: string) => {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    ssl(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-config',
      config,
      '-extensions',
      'ca',
      '-subj',
      `/CN=${name}`,
    );
    return { cert, key };
  };
  const ca = newCa('ca');
  const newLeaf = (name: string, usage: 'server' | 'client', signer = ca): Pem => {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    const csr = path.join(dir, `${name}.csr`);
    ssl('req', ...ecKey, '-keyout', key, '-out', csr, '-config', config, '-subj', `/CN=${name}`);
    ssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      signer.cert,
      '-CAkey',
      signer.key,
      '-set_serial',
      String(Math.floor(Math.random() * 1e15)),
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      config,
      '-extensions',
      usage,
    );
    return { cert, key };
  };
  return {
    dir,
    ca,
    server: newLeaf('server', 'server'),
    client: newLeaf('client', 'client'),
    read: (file) => fs.readFileSync(file),
    newCa,
    newLeaf,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
