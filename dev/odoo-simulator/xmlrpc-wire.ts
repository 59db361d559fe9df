import type { IncomingMessage } from 'node:http';
import Deserializer from 'xmlrpc/lib/deserializer.js';
import CustomType from 'xmlrpc/lib/customtype.js';
import { serializeFault, serializeMethodResponse } from 'xmlrpc/lib/serializer.js';

/**
 * XML-RPC on the wire, as Python's xmlrpc.client (and so Odoo) writes it, using the xmlrpc
 * package's own parser and writer so the client under test reads exactly what it reads in production.
 */
export interface MethodCall {
  readonly method: string;
  readonly params: unknown[];
}

export function readMethodCall(request: IncomingMessage): Promise<MethodCall> {
  return new Promise((resolve, reject) => {
    new Deserializer().deserializeMethodCall(request, (error, method, params) => {
      if (error) reject(error);
      else resolve({ method, params: params ?? [] });
    });
  });
}

/**
 * A Python float: Odoo sends `81.0` as `<double>81.0</double>` where the xmlrpc package alone would
 * write `<int>81</int>`. Floats and monetary fields are sent through this.
 */
export class PythonFloat extends CustomType {
  constructor(value: number) {
    super(Number.isInteger(value) ? value.toFixed(1) : String(value));
    this.tagName = 'double';
  }
}

export function methodResponse(value: unknown): string {
  return serializeMethodResponse(value);
}

export function faultResponse(faultCode: number | string, faultString: string): string {
  return serializeFault({ faultCode, faultString });
}
