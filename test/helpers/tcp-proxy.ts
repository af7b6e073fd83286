// A TCP proxy in front of a server that can make connections vanish the way a crashed host or a dropped network
// path does: nothing is closed, bytes just stop arriving, in both directions.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  host: string;
  port: number;
  /** Each proxied connection by the local port of its upstream side (the `client_port` the server sees). */
  connections(): number[];
  /** Stops forwarding on one connection for good: what either side sends or closes is dropped, neither side is closed. */
  blackhole(upstreamPort: number): void;
  /** New connections are accepted and then ignored (`true`), as by a host that swallows packets, or proxied again. */
  swallowNew(on: boolean): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  dead: boolean;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Map<number, Pair>();
  const swallowed = new Set<Socket>();
  let swallowing = false;

  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    if (swallowing) {
      swallowed.add(client);
      return;
    }
    client.pause();
    const upstream = connect(targetPort, targetHost, () => {
      pairs.set(upstream.localPort!, pair);
      client.resume();
    });
    upstream.on('error', () => undefined);
    const pair: Pair = { client, upstream, dead: false };
    client.on('data', (chunk: Buffer) => {
      if (!pair.dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dead) client.write(chunk);
    });
    client.on('close', () => {
      if (!pair.dead) upstream.destroy();
    });
    upstream.on('close', () => {
      if (!pair.dead) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');

  return {
    host: '127.0.0.1',
    port: address.port,
    connections: () => [...pairs.keys()],
    blackhole(upstreamPort) {
      const pair = pairs.get(upstreamPort);
      if (pair === undefined) throw new Error(`no proxied connection with upstream port ${upstreamPort}`);
      pair.dead = true;
    },
    swallowNew(on) {
      swallowing = on;
    },
    async close() {
      for (const pair of pairs.values()) {
        pair.dead = true;
        pair.client.destroy();
        pair.upstream.destroy();
      }
      for (const socket of swallowed) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
