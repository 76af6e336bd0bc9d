import type http from 'node:http';

/** What every endpoint answers in: JSON, never cached. */
export function replyJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' }).end(text);
}

/**
 * Answers without reading (the rest of) the body, and closes the connection afterwards: reading on
 * to keep the connection alive would let a client make the server swallow any amount of data.
 */
export function refuseUnread(req: http.IncomingMessage, res: http.ServerResponse, status: number, error: string, extra: object = {}): void {
  req.pause();
  res.setHeader('Connection', 'close');
  res.once('finish', () => req.socket.destroySoon());
  replyJson(res, status, { error, ...extra });
}

/** The body as a Buffer; 'too large' as soon as it passes `limit` (the rest is never read). */
export function readBounded(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (result: Buffer | 'too large' | 'aborted') => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) finish('too large');
      else chunks.push(chunk);
    };
    const onEnd = () => finish(Buffer.concat(chunks, length));
    const onAbort = () => finish('aborted');
    const onClose = () => {
      if (!req.complete) finish('aborted');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}
