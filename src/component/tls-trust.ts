import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/**
 * TLS trust for HTTPS connections (the schema registry, Odoo): a private CA given by file, and
 * recognising a certificate the client refused, so it can be reported as a configuration problem
 * (waiting does not fix it) rather than as an outage.
 */

/** Node's error codes for a server certificate the client does not trust. */
export const TLS_TRUST_CODES = /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** The same refusals as Node words them, for clients that keep only the message (the registry client does). */
const TLS_TRUST_MESSAGES = /\b(self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|certificate signature failure|does not match certificate's altnames)\b/i;

/** The first error in `error`'s cause chain that says a server certificate was not trusted: its code and message. */
export function untrustedCertificate(error: unknown): { code: string; message: string } | undefined {
  let current: unknown = error;
  for (let depth = 0; current !== null && typeof current === 'object' && depth < 6; depth++) {
    const { code, message, cause, originalError } = current as { code?: unknown; message?: unknown; cause?: unknown; originalError?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (typeof code === 'string' && TLS_TRUST_CODES.test(code)) return { code, message: text };
    if (TLS_TRUST_MESSAGES.test(text)) return { code: typeof code === 'string' ? code : 'CERT_UNTRUSTED', message: text };
    current = cause ?? originalError;
  }
  return undefined;
}

/**
 * The certificate authorities an HTTPS client trusts when a CA file is configured: Node's own
 * roots plus the file's certificates (PEM, one or several), so a private CA adds to the public ones.
 * Undefined without a file (Node's defaults, and NODE_EXTRA_CA_CERTS, apply).
 */
export function trustedCas(caFile: string | undefined): string[] | undefined {
  if (!caFile) return undefined;
  return [...rootCertificates, readFileSync(caFile, 'utf8')];
}
