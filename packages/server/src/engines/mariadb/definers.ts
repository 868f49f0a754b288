/**
 * Dump text with every DEFINER=`user`@`host` clause made DEFINER=CURRENT_USER. Only lines that are
 * not table data are looked at: mariadb-dump writes each row on a line of its own that starts with
 * "(" or "INSERT", with newlines in values escaped, so customer data is never rewritten.
 */
export async function* ownDefiners(body: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> {
  // A name as SHOW CREATE prints it: `…` normally, "…" under ANSI_QUOTES.
  const name = '(?:`(?:[^`]|``)+`|"(?:[^"]|"")+"|[A-Za-z0-9_.%$-]+)';
  const definer = new RegExp(`DEFINER=${name}@${name}`, 'g');
  const rewrite = (lines: Buffer): Buffer => {
    if (!lines.includes('DEFINER=')) return lines;
    // latin1 maps bytes to characters one to one: the bytes of untouched lines stay as they were.
    const text = lines
      .toString('latin1')
      .split('\n')
      .map((line) =>
        line.startsWith('(') || line.startsWith('INSERT')
          ? line
          : line.replace(definer, 'DEFINER=CURRENT_USER'),
      )
      .join('\n');
    return Buffer.from(text, 'latin1');
  };
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    const data = rest.length ? Buffer.concat([rest, chunk]) : Buffer.from(chunk);
    const end = data.lastIndexOf(10);
    if (end < 0) {
      rest = data;
      continue;
    }
    yield rewrite(data.subarray(0, end + 1));
    rest = data.subarray(end + 1);
  }
  if (rest.length) yield rewrite(rest);
}
