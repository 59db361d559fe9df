/**
 * Faults the way Odoo 17's /xmlrpc/2 endpoints send them (odoo/service/wsgi_server.py):
 * AccessDenied → 3, AccessError → 4, UserError and its subclasses (ValidationError, MissingError)
 * → 2 with the message as faultString, anything else → 1 with the formatted Python traceback.
 */
export class OdooFault extends Error {
  constructor(readonly faultCode: 1 | 2 | 3 | 4, readonly faultString: string) {
    super(faultString);
  }
}

const FRAMES = [
  '  File "/usr/lib/python3/dist-packages/odoo/service/wsgi_server.py", line 93, in xmlrpc_2\n    response = self._xmlrpc(service)',
  '  File "/usr/lib/python3/dist-packages/odoo/http.py", line 2174, in dispatch\n    result = dispatch_rpc(service, method, params)',
  '  File "/usr/lib/python3/dist-packages/odoo/service/model.py", line 98, in retrying\n    result = func()',
  '  File "/usr/lib/python3/dist-packages/odoo/api.py", line 466, in call_kw\n    result = _call_kw_multi(method, model, args, kwargs)',
];

/** Fault 1: what an unexpected Python exception looks like over XML-RPC. */
export function applicationError(exceptionLine: string): OdooFault {
  return new OdooFault(1, `Traceback (most recent call last):\n${FRAMES.join('\n')}\n${exceptionLine}\n`);
}

export function accessDenied(): OdooFault {
  return new OdooFault(3, 'Access Denied');
}

export function accessError(message: string): OdooFault {
  return new OdooFault(4, message);
}

export function userError(message: string): OdooFault {
  return new OdooFault(2, message);
}

export function missingError(model: string, ids: readonly number[], uid: number): OdooFault {
  return new OdooFault(2, `Record does not exist or has been deleted.\n(Record: ${model}(${ids.join(', ')},), User: ${uid})`);
}

/** What psycopg2 raises after Odoo's own retries of a concurrent update are exhausted. */
export function serializationFailure(): OdooFault {
  return applicationError('psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update');
}

export function invalidField(model: string, field: string): OdooFault {
  return applicationError(`ValueError: Invalid field '${field}' on model '${model}'`);
}

export function notNullViolation(modelDescription: string, model: string, fieldLabel: string, field: string): OdooFault {
  return userError(
    'The operation cannot be completed: - Create/update: a mandatory field is not set.\n' +
    '- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n' +
    `Model: ${modelDescription} (${model})\nField: ${fieldLabel} (${field})`,
  );
}

export function duplicateKey(constraint: string, detail: string): OdooFault {
  return userError(`The operation cannot be completed: duplicate key value violates unique constraint "${constraint}"\nDETAIL:  ${detail}`);
}
