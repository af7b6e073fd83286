#!/usr/bin/env node
// The container's health check: exit 0 when this host's Sluice answers /healthz with 200, else 1. Slim images have
// no curl. It reads the process environment only (settings given in a .env file are not seen). Over HTTPS when SLUICE_HTTP_TLS_CERT is set; the certificate is not checked, as nothing secret is sent
// and it names the service, not 127.0.0.1. SLUICE_HTTP_PORT=0 ("any free port") cannot be probed.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const port = Number(process.env.SLUICE_HTTP_PORT || 8080);
// The address Sluice listens on (SLUICE_HTTP_HOST), or loopback when it listens on every address.
const bind = (process.env.SLUICE_HTTP_HOST || '0.0.0.0').replace(/^\[(.*)\]$/, '$1');
const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
const secure = Boolean(process.env.SLUICE_HTTP_TLS_CERT);
const request = secure ? httpsRequest : httpRequest;
const req = request({ host, port, path: '/healthz', timeout: 4000, ...(secure ? { rejectUnauthorized: false } : {}) }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
req.end();
