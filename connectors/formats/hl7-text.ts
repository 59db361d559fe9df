import { formatError } from './canonical.ts';
import type { Charset } from './text-encoding.ts';

/**
 * HL7 v2 text as the message means it: escape sequences decoded with the message's own encoding
 * characters (MSH-1/MSH-2), and the character set the message declares in MSH-18.
 */

/** The separators a message declares in MSH-1 and MSH-2. */
export interface Hl7Delimiters {
  readonly field: string;
  readonly component: string;
  readonly repetition: string;
  readonly escape: string;
  readonly subcomponent: string;
  /** v2.7+: MSH-2's fifth character, escaped as \P\. */
  readonly truncation: string | undefined;
}

export function delimitersOf(mshSegment: string): Hl7Delimiters {
  const field = mshSegment[3] ?? '|';
  const encoding = mshSegment.slice(4).split(field, 1)[0] ?? '';
  return {
    field,
    component: encoding[0] ?? '^',
    repetition: encoding[1] ?? '~',
    escape: encoding[2] ?? '\\',
    subcomponent: encoding[3] ?? '&',
    truncation: encoding[4],
  };
}

/**
 * Decodes HL7 escape sequences in one component value (already split on the separators):
 * \F\ \S\ \T\ \R\ \E\ \P\ become the separators they stand for; \Xhh…\ hex bytes are decoded in
 * the message's character set (\X0D\ is a carriage return); \.br\ is a line break and \.sp n\ n of
 * them; \H\ \N\ (highlighting) and the other formatting commands (\.in\ \.ti\ \.sk\ \.ce\ \.fi\
 * \.nf\) carry no text and are removed. Sequences Lifeline does not interpret (\Cxxyy\ \Mxxyyzz\
 * charset switches, \Z…\ locally defined) and an escape character with no closing one stay as
 * they are: nothing is silently dropped.
 */
export function unescapeHl7(value: string, delimiters: Hl7Delimiters, charset: Charset, where: string): string {
  const escape = delimiters.escape;
  if (escape === '' || !value.includes(escape)) return value;
  let result = '';
  let index = 0;
  while (index < value.length) {
    const start = value.indexOf(escape, index);
    if (start === -1) {
      result += value.slice(index);
      break;
    }
    result += value.slice(index, start);
    const end = value.indexOf(escape, start + 1);
    if (end === -1) {
      result += value.slice(start);
      break;
    }
    const body = value.slice(start + 1, end);
    const decoded = decodeSequence(body, delimiters, charset, where);
    result += decoded ?? value.slice(start, end + 1);
    index = end + 1;
  }
  return result;
}

function decodeSequence(body: string, delimiters: Hl7Delimiters, charset: Charset, where: string): string | undefined {
  switch (body) {
    case 'F': return delimiters.field;
    case 'S': return delimiters.component;
    case 'T': return delimiters.subcomponent;
    case 'R': return delimiters.repetition;
    case 'E': return delimiters.escape;
    case 'P': return delimiters.truncation ?? '#';
    case 'H': case 'N': return '';
    case '.br': return '\n';
    default: break;
  }
  if (/^X(?:[0-9A-Fa-f]{2})+$/.test(body)) {
    const bytes = Buffer.from(body.slice(1), 'hex');
    try {
      return new TextDecoder(charset, { fatal: true }).decode(bytes);
    } catch (error) {
      throw formatError('LL_FORMAT_HL7_INVALID', `a \\X…\\ escape holds bytes that are not valid ${charset}`, where, error);
    }
  }
  const space = /^\.sp(?:\s*(\d{1,3}))?$/.exec(body);
  if (space) return '\n'.repeat(Math.max(1, Number(space[1] ?? 1)));
  if (/^\.(?:in|ti|sk|ce|fi|nf)(?:\s*[+-]?\d{0,3})?$/.test(body)) return '';
  return undefined;
}

/** MSH-18 values (HL7 table 0211) Lifeline decodes, and the decoder each one means. */
const DECLARED_CHARSETS: Readonly<Record<string, Charset>> = {
  ASCII: 'utf-8', // a strict subset
  'UNICODE UTF-8': 'utf-8',
  'UTF-8': 'utf-8',
  '8859/1': 'iso-8859-1',
  'ISO-8859-1': 'iso-8859-1',
  'WINDOWS-1252': 'windows-1252',
  CP1252: 'windows-1252',
};

/**
 * The character set an HL7 delivery declares in the MSH-18 of its first message, read from the
 * raw bytes (the header is ASCII in every encoding Lifeline reads): undefined when MSH-18 is empty
 * or there is no MSH in the first 64 KiB. A declared set Lifeline cannot decode is an error.
 */
export function declaredHl7Charset(bytes: Uint8Array): Charset | undefined {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 65_536)).toString('latin1');
  const at = head.search(/(^|[\r\n\v])MSH/);
  if (at === -1) return undefined;
  const start = head[at] === 'M' ? at : at + 1;
  const segment = head.slice(start).split(/[\r\n]/, 1)[0] ?? '';
  const field = segment[3];
  if (!field) return undefined;
  // MSH-1 is the separator itself, so MSH-n is split element n - 1.
  const declared = (segment.split(field)[17] ?? '').split(segment[4] ?? '^')[0]?.split(segment[5] ?? '~')[0]?.trim().toUpperCase() ?? '';
  if (declared === '') return undefined;
  const charset = DECLARED_CHARSETS[declared];
  if (!charset) {
    throw formatError('LL_FORMAT_ENCODING', `MSH-18 declares a character set Lifeline does not decode (supported: ${Object.keys(DECLARED_CHARSETS).join(', ')})`, 'message 1 MSH-18');
  }
  return charset;
}
