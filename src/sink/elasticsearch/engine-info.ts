/**
 * Detects which search engine answers at the configured URL (`GET /`) and checks it is supported:
 * Elasticsearch 7.10+ / 8.x / 9.x, OpenSearch 1.x-3.x.
 */
import { AppError } from '../../errors/app-error.js';
import type { EngineInfo } from '../document-sink.js';
import type { EngineClient } from './engine-client.js';
import { headerValue } from './engine-client.js';
import { asRecord, EngineTransportError, parseEngineErrorText, requestRejected } from './es-errors.js';

const SUPPORTED = 'supported: Elasticsearch 7.10 or newer 7.x, 8.x, 9.x; OpenSearch 1.x to 3.x';

/**
 * Reads `GET /` and returns the flavour and version.
 * - `version.distribution === "opensearch"` means OpenSearch, whatever the hint says.
 * - Otherwise `flavorHint` (OPENSEARCH=true) decides, defaulting to Elasticsearch. For Elasticsearch 7.14 and
 *   newer the response must carry `x-elastic-product: Elasticsearch`, the check the official clients make.
 * Throws `AppError('SNK_CONNECT')` when unreachable or the credentials are refused, and
 * `AppError('SNK_UNSUPPORTED')` for anything that is not a supported engine.
 */
export async function detectEngine(client: EngineClient, flavorHint?: EngineInfo['flavor']): Promise<EngineInfo> {
  const res = await client.request('GET', '/');
  const what = `connecting to the search engine at ${client.url}`;
  if (res.status === 401 || res.status === 403) throw requestRejected(what, res.status, res.body);
  if (res.status < 200 || res.status >= 300) {
    const { type, reason } = parseEngineErrorText(res.body, res.status);
    // Booting, recovering, or a proxy in front of it not ready yet (OpenSearch: "Security not initialized", 503).
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new EngineTransportError(`${what}: GET / answered HTTP ${res.status} (${type}: ${reason})`, `http_${res.status}`, true);
    }
    throw new AppError('SNK_CONNECT', `${what}: GET / answered HTTP ${res.status} (${type}: ${reason})`, {
      details: { status: res.status, errorType: type },
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    throw notAnEngine(client.url, 'GET / did not return JSON');
  }
  const version = asRecord(asRecord(body)?.['version']);
  const number = version?.['number'];
  if (typeof number !== 'string') throw notAnEngine(client.url, 'GET / has no version.number');
  const parsed = parseVersion(number);
  if (!parsed) throw notAnEngine(client.url, `unrecognised version "${number}"`);

  const distribution = version?.['distribution'];
  const flavor: EngineInfo['flavor'] = distribution === 'opensearch' ? 'opensearch' : (flavorHint ?? 'elasticsearch');
  const info: EngineInfo = { flavor, version: number, major: parsed.major };
  if (flavor === 'opensearch') {
    // OpenSearch in compatibility mode (`compatibility.override_main_response_version`) reports 7.10.2.
    const compatMode = parsed.major === 7 && parsed.minor === 10;
    if ((parsed.major < 1 || parsed.major > 3) && !compatMode) throw unsupported(`OpenSearch ${number}`);
    return info;
  }
  if (parsed.major < 7 || parsed.major > 9 || (parsed.major === 7 && parsed.minor < 10)) {
    throw unsupported(`Elasticsearch ${number}`);
  }
  const needsProductHeader = parsed.major > 7 || parsed.minor >= 14;
  if (needsProductHeader && headerValue(res.headers, 'x-elastic-product') !== 'Elasticsearch') {
    throw new AppError(
      'SNK_UNSUPPORTED',
      `${client.url} is not an Elasticsearch server: it reports version ${number} but does not send the ` +
        `"x-elastic-product: Elasticsearch" header. If it is OpenSearch or a compatible server, set OPENSEARCH=true.`,
      { details: { version: number } },
    );
  }
  return info;
}

function parseVersion(text: string): { major: number; minor: number } | undefined {
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

function notAnEngine(url: string, why: string): AppError {
  return new AppError('SNK_UNSUPPORTED', `${url} does not look like Elasticsearch or OpenSearch: ${why}`);
}

function unsupported(what: string): AppError {
  return new AppError('SNK_UNSUPPORTED', `${what} is not supported (${SUPPORTED})`, { details: { engine: what } });
}
