// The xmlrpc package's own (de)serializer modules, used by the Odoo simulator to speak exactly the
// wire format the client parses. @types/xmlrpc declares only the package's main module.
declare module 'xmlrpc/lib/deserializer.js' {
  import type { Readable } from 'node:stream';
  class Deserializer {
    constructor(encoding?: string);
    deserializeMethodCall(stream: Readable, callback: (error: Error | null | undefined, methodName: string, params: unknown[]) => void): void;
  }
  export = Deserializer;
}

declare module 'xmlrpc/lib/serializer.js' {
  export function serializeMethodResponse(value: unknown): string;
  export function serializeFault(fault: { faultCode: number | string; faultString: string }): string;
}

declare module 'xmlrpc/lib/customtype.js' {
  class CustomType {
    constructor(raw: string);
    raw: string;
    tagName: string;
  }
  export = CustomType;
}
