/**
 * Where a text stops being JSON (RFC 8259), as a line and column, for messages that must not quote
 * the text: V8's JSON.parse errors quote up to a line of it ("Unexpected token 'h', "{"key": hunter2}"
 * is not valid JSON"), and a config.json may be a link to a file full of secrets.
 */
export interface JsonSyntaxError {
  /** 1-based, counting "\n". */
  readonly line: number;
  /** 1-based, in UTF-16 code units of that line. */
  readonly column: number;
  /** True when the text ends before the value does (a truncated file). */
  readonly atEnd: boolean;
}

/** The first syntax error of `text`, or null if it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  let i = 0;
  const fail = (): never => {
    throw new SyntaxAt(i);
  };
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const take = (expected: string) => {
    if (text.charAt(i) !== expected) fail();
    i++;
  };
  const digits = () => {
    const from = i;
    while (text.charAt(i) >= '0' && text.charAt(i) <= '9') i++;
    if (i === from) fail();
  };
  const string = () => {
    take('"');
    for (;;) {
      if (i >= text.length || text.charCodeAt(i) < 0x20) fail();
      const char = text.charAt(i++);
      if (char === '"') return;
      if (char !== '\\') continue;
      if (i < text.length && '"\\/bfnrt'.includes(text.charAt(i))) i++;
      else if (text.charAt(i) === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) i += 5;
      else fail();
    }
  };
  const number = () => {
    if (text.charAt(i) === '-') i++;
    if (text.charAt(i) === '0') i++;
    else digits();
    if (text.charAt(i) === '.') {
      i++;
      digits();
    }
    if (text.charAt(i) === 'e' || text.charAt(i) === 'E') {
      i++;
      if (text.charAt(i) === '+' || text.charAt(i) === '-') i++;
      digits();
    }
  };
  const sequence = (close: string, item: () => void) => {
    i++;
    skipSpace();
    if (text.charAt(i) === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      skipSpace();
      if (text.charAt(i) === close) {
        i++;
        return;
      }
      take(',');
    }
  };
  let depth = 0;
  const value = (): void => {
    skipSpace();
    const char = text.charAt(i);
    // Deeper than any config, and than this recursion may go: reported where it gets too deep.
    if ((char === '{' || char === '[') && ++depth > MAX_DEPTH) fail();
    if (char === '{') {
      sequence('}', () => {
        skipSpace();
        string();
        skipSpace();
        take(':');
        value();
      });
      depth--;
    } else if (char === '[') {
      sequence(']', value);
      depth--;
    }
    else if (char === '"') string();
    else if (char === '-' || (char >= '0' && char <= '9')) number();
    else {
      const word = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
      i += word?.length ?? fail();
    }
  };

  try {
    value();
    skipSpace();
    if (i < text.length) fail();
    return null;
  } catch (error) {
    if (!(error instanceof SyntaxAt)) throw error;
    const before = text.slice(0, error.offset);
    const lineStart = before.lastIndexOf('\n') + 1;
    return { line: before.split('\n').length, column: error.offset - lineStart + 1, atEnd: error.offset >= text.length };
  }
}

const MAX_DEPTH = 512;

class SyntaxAt extends Error {
  constructor(readonly offset: number) {
    super(`JSON syntax error at offset ${offset}`);
  }
}
