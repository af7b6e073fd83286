// A throwaway test PKI made with openssl: CAs, and leaf certificates signed by one of them for given names.
// The same recipe as the Redis TLS test in test/integration/checkpoint-store.test.ts, shared and parameterised.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  /** Path of `name` in the PKI directory (`<ca>.crt`, `<ca>.key`, `<leaf>.crt`, `<leaf>.key`). */
  file(name: string): string;
  read(name: string): string;
  /** A self-signed CA `<name>.crt` / `<name>.key` with CN `sluice-<name>`. */
  ca(name: string): void;
  /**
   * A leaf `<name>.crt` / `<name>.key` signed by CA `ca`, for `commonName` with the subjectAltNames `dns` and `ips`
   * (TLS clients check the SAN, not the CN, once a certificate has one).
   */
  leaf(name: string, options: { ca: string; commonName: string; dns?: string[]; ips?: string[] }): void;
  remove(): void;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function makeTestPki(prefix = 'sluice-pki-'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const file = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  return {
    dir,
    file,
    read: (name) => readFileSync(file(name), 'utf8'),
    ca(name) {
      ssl('req', '-x509', ...key, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=sluice-${name}`);
    },
    leaf(name, { ca, commonName, dns = [], ips = [] }) {
      const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((ip) => `IP:${ip}`)];
      writeFileSync(file(`${name}.ext`), san.length > 0 ? `subjectAltName=${san.join(',')}\n` : '\n');
      ssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
