import { formatError } from './canonical.ts';

/**
 * Bytes to text, strictly: content that is not valid in its declared encoding is an error naming
 * the line, column and byte offset of the first bad byte — never a silent U+FFFD. A UTF-8 byte
 * order mark is dropped.
 */
export const CHARSETS = ['utf-8', 'windows-1252', 'iso-8859-1'] as const;
export type Charset = (typeof CHARSETS)[number];

export function decodeText(bytes: Uint8Array, charset: Charset): string {
  const decoder = new StrictTextDecoder(charset);
  return decoder.write(bytes) + decoder.end();
}

/** A streaming decoder that knows where it is (line, column, byte offset), for error messages. */
export class StrictTextDecoder {
  private readonly decoder: TextDecoder;
  /** Bytes of a character split across chunks, carried to the next chunk. */
  private carry: Uint8Array = new Uint8Array(0);
  private bytesBefore = 0;
  private line = 1;
  private column = 1;

  constructor(private readonly charset: Charset) {
    this.decoder = new TextDecoder(charset, { fatal: true });
  }

  write(chunk: Uint8Array): string {
    const bytes = this.carry.length === 0 ? chunk : concat(this.carry, chunk);
    const incomplete = this.charset === 'utf-8' ? incompleteTail(bytes) : 0;
    const complete = bytes.subarray(0, bytes.length - incomplete);
    let text: string;
    try {
      text = this.decoder.decode(complete, { stream: true });
    } catch (error) {
      throw this.positionedError(complete, error);
    }
    this.carry = bytes.slice(bytes.length - incomplete);
    this.advance(text, complete.length);
    return text;
  }

  end(): string {
    if (this.carry.length > 0) {
      throw formatError('LL_FORMAT_ENCODING', `content ends inside a multi-byte ${this.charset} character`, this.where(this.line, this.column, this.bytesBefore));
    }
    return this.decoder.decode();
  }

  private advance(text: string, byteCount: number): void {
    this.bytesBefore += byteCount;
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline === -1) {
      this.column += text.length;
      return;
    }
    for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) this.line++;
    this.column = text.length - lastNewline;
  }

  /** Finds the first bad byte: the longest prefix that still decodes ends right before it. */
  private positionedError(bytes: Uint8Array, cause: unknown): Error {
    let good = 0;
    let bad = bytes.length;
    while (bad - good > 1) {
      const middle = (good + bad) >> 1;
      if (decodes(bytes.subarray(0, middle), this.charset)) good = middle;
      else bad = middle;
    }
    // `good` bytes decode; back off to a character boundary so the prefix text is whole.
    const validText = new TextDecoder(this.charset).decode(bytes.subarray(0, good), { stream: true });
    const lines = validText.split('\n');
    const line = this.line + lines.length - 1;
    const column = lines.length === 1 ? this.column + validText.length : (lines.at(-1) as string).length + 1;
    const offset = this.bytesBefore + Buffer.byteLength(validText, 'utf8');
    return formatError('LL_FORMAT_ENCODING', `not valid ${this.charset}: the byte there starts no valid character`, this.where(line, column, offset), cause);
  }

  private where(line: number, column: number, offset: number): string {
    return `line ${line} column ${column} (byte ${offset})`;
  }
}

function decodes(bytes: Uint8Array, charset: Charset): boolean {
  try {
    new TextDecoder(charset, { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/** How many trailing bytes start a UTF-8 character the chunk does not finish (0–3). */
function incompleteTail(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for the lead
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? back : 0;
  }
  return 0;
}

function concat(first: Uint8Array, second: Uint8Array): Uint8Array {
  const joined = new Uint8Array(first.length + second.length);
  joined.set(first, 0);
  joined.set(second, first.length);
  return joined;
}
