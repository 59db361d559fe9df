import { connect, type Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';

/** An HTTPS front for a plain HTTP server: TLS ends here, bytes go on to host:port unchanged. */
export interface TlsProxy {
  readonly port: number;
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Terminates TLS with the given certificate and pipes each connection to `target` — how a
 * hospital fronts a registry or Odoo with its reverse proxy and its own CA's certificate.
 */
export async function startTlsProxy(target: { host: string; port: number }, certificate: { cert: string; key: string }): Promise<TlsProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ cert: certificate.cert, key: certificate.key }, (client: TLSSocket) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = (): void => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  // A client that refuses the certificate aborts the handshake: nothing to do here.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    origin: `https://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
