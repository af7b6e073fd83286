// Closing a node-postgres client after its connection failed: pg's end() then can wait for an 'end' event that has
// already come and gone. Reproduced with a server that accepts TLS and refuses the handshake (a client certificate
// required), as PostgreSQL with `hostssl … cert` does.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endClient, plainConnectionNotice, SERVER_WITHOUT_TLS } from '../../../src/source/postgres/connect.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../../helpers/pki.js';

describe.runIf(hasOpenssl())('endClient', () => {
  let pki: TestPki;
  let server: net.Server;
  let port: number;

  beforeAll(async () => {
    pki = makeTestPki('sluice-end-');
    pki.ca('ca');
    pki.leaf('server', { ca: 'ca', commonName: 'localhost', ips: ['127.0.0.1'] });
    const [key, cert, ca] = [pki.read('server.key'), pki.read('server.crt'), pki.read('ca.crt')];
    server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      // The SSLRequest: answered "S", then a TLS handshake that fails for want of a client certificate.
      socket.once('data', () => {
        socket.write('S');
        new tls.TLSSocket(socket, { isServer: true, key, cert, ca: [ca], requestCert: true, rejectUnauthorized: true }).on('error', () => undefined);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => {
    server?.close();
    pki?.remove();
  });

  it('returns after a connection refused during the TLS handshake, where pg end() alone never does', async () => {
    const failed = async () => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'u', database: 'd', ssl: { rejectUnauthorized: false } });
      client.on('error', () => undefined);
      await expect(client.connect()).rejects.toThrow(/alert/);
      return client;
    };
    // With a bare `await client.end()` this test never ends (vitest fails it at its timeout).
    const client = await failed();
    await endClient(client);
    expect((client as unknown as { connection: { stream: net.Socket } }).connection.stream.destroyed).toBe(true);
  });
});

describe('plainConnectionNotice (PG_SSLMODE prefer settled for no TLS)', () => {
  it('is an info line for a server on this machine, a warning across a network or when TLS was refused', () => {
    for (const host of ['localhost', '127.0.0.1', '::1', '/var/run/postgresql']) {
      expect(plainConnectionNotice({ host, preferredTlsRefusal: SERVER_WITHOUT_TLS }), host).toEqual({ level: 'info', message: 'PostgreSQL connections go without TLS: the server offers none (PG_SSLMODE=prefer)' });
    }
    for (const host of ['db', 'pg.internal.example', '10.0.0.5']) {
      const notice = plainConnectionNotice({ host, preferredTlsRefusal: SERVER_WITHOUT_TLS });
      expect(notice.level, host).toBe('warn');
      expect(notice.message).toContain('the password and the rows cross the network readable');
    }
    const refused = plainConnectionNotice({ host: 'localhost', preferredTlsRefusal: 'certificate required' });
    expect(refused.level).toBe('warn');
    expect(refused.message).toContain('refused the login over TLS');
  });
});
