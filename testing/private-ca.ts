import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate authority made for one test, and a server certificate it signed. */
export interface PrivateCa {
  readonly dir: string;
  /** PEM of the CA: what a client must be told to trust. */
  readonly caFile: string;
  /** The server's certificate (for 127.0.0.1 and localhost) and key, PEM. */
  readonly cert: string;
  readonly key: string;
}

/**
 * Makes a private CA and a server certificate for 127.0.0.1/localhost with the system's openssl
 * (EC P-256, valid two days), as a hospital's own PKI would issue one. Nothing is kept in the repository.
 */
export function makePrivateCa(name = 'Lifeline test CA'): PrivateCa {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-ca-'));
  const file = (base: string): string => join(dir, base);
  const openssl = (args: string[]): void => { execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] }); };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext')]);
  return { dir, caFile: file('ca.pem'), cert: readFileSync(file('server.pem'), 'utf8'), key: readFileSync(file('server.key'), 'utf8') };
}
