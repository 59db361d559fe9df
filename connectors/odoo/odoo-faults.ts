import { LifelineError, errorMessage, isRetriable, type ErrorCode } from '../../src/errors.ts';

/**
 * Odoo's XML-RPC faults (odoo/service/wsgi_server.py) as Lifeline errors:
 * 3 AccessDenied, 4 AccessError, 2 UserError and its kin (ValidationError, MissingError, unknown
 * model, duplicate key: the faultString is the user-facing text), 1 everything else with a Python
 * traceback as faultString. A fault 1 whose traceback is a serialization failure or a lock is a
 * concurrency conflict (Odoo retried it itself and gave up): trying again later succeeds.
 */
export const ODOO_FAULT = { application: 1, warning: 2, accessDenied: 3, accessError: 4 } as const;

const CONFLICT = /could not serialize access|concurrent update|could not obtain lock|LockNotAvailable|SerializationFailure|deadlock detected|lock timeout/i;
const MISSING_RECORD = /^Record does not exist or has been deleted/;

export interface XmlRpcFault {
  readonly faultCode: number | string;
  readonly faultString: string;
}

export function isXmlRpcFault(error: unknown): error is Error & XmlRpcFault {
  return error instanceof Error && 'faultCode' in error && 'faultString' in error;
}

/** The last meaningful line of a Python traceback, e.g. `ValueError: Invalid field 'x' on model 'res.partner'`. */
export function tracebackSummary(faultString: string): string {
  const lines = faultString.split('\n').map((line) => line.trim()).filter(Boolean);
  if (!faultString.startsWith('Traceback')) return faultString.trim();
  return lines[lines.length - 1] ?? faultString.trim();
}

/** Any failure of an Odoo call (fault, HTTP, network, timeout) as a LifelineError naming the operation. */
export function odooError(error: unknown, operation: string): LifelineError {
  if (error instanceof LifelineError) return error;
  if (isXmlRpcFault(error)) return faultError(error, operation);
  const status = httpStatus(error);
  if (status !== undefined && status >= 500) {
    return new LifelineError('LL_ODOO_UNAVAILABLE', `Odoo ${operation}: HTTP ${status}`, { cause: error, details: { status } });
  }
  if (status !== undefined && status !== 200) {
    return new LifelineError('LL_ODOO_PROTOCOL', `Odoo ${operation}: HTTP ${status} — is the connection url the Odoo server's base URL?`, { cause: error, details: { status } });
  }
  if (isRetriable(error) || isNetworkFailure(error)) {
    return new LifelineError('LL_ODOO_UNAVAILABLE', `Odoo ${operation}: ${errorMessage(error)}`, { cause: error });
  }
  // A 200 whose body is not an XML-RPC response: a proxy's page, or not Odoo at all.
  return new LifelineError('LL_ODOO_PROTOCOL', `Odoo ${operation}: the answer is not XML-RPC (${errorMessage(error)})`, { cause: error });
}

function faultError(fault: Error & XmlRpcFault, operation: string): LifelineError {
  const text = String(fault.faultString ?? '');
  const code = typeof fault.faultCode === 'number' ? fault.faultCode : legacyFaultCode(String(fault.faultCode), text);
  const details = { faultCode: fault.faultCode, faultString: text };
  const make = (errorCode: ErrorCode, message: string): LifelineError =>
    new LifelineError(errorCode, `Odoo ${operation} failed (fault ${fault.faultCode}): ${message}`, { cause: fault, details });
  switch (code) {
    case ODOO_FAULT.accessDenied: return make('LL_ODOO_ACCESS_DENIED', text);
    case ODOO_FAULT.accessError: return make('LL_ODOO_ACCESS_ERROR', text);
    case ODOO_FAULT.warning: return make(MISSING_RECORD.test(text) ? 'LL_ODOO_RECORD_MISSING' : 'LL_ODOO_USER_ERROR', text);
    default: return make(CONFLICT.test(text) ? 'LL_ODOO_CONFLICT' : 'LL_ODOO_FAULT', tracebackSummary(text));
  }
}

/** The legacy /xmlrpc/ endpoints send string fault codes; read them as the numbered ones. */
function legacyFaultCode(faultCode: string, faultString: string): number {
  if (/AccessDenied|Access Denied/i.test(faultCode)) return ODOO_FAULT.accessDenied;
  if (/AccessError/i.test(faultCode)) return ODOO_FAULT.accessError;
  if (/^warning|UserError|ValidationError/i.test(faultCode) || /^warning -- /.test(faultString)) return ODOO_FAULT.warning;
  return ODOO_FAULT.application;
}

function httpStatus(error: unknown): number | undefined {
  const response = (error as { res?: { statusCode?: unknown } } | null)?.res;
  return typeof response?.statusCode === 'number' ? response.statusCode : undefined;
}

function isNetworkFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return true;
  return /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE/i.test(error.message);
}
