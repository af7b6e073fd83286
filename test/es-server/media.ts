import type { IncomingHttpHeaders } from 'node:http';
import { cause, EsError, simpleError } from './errors.js';
import type { FlavorInfo } from './flavors.js';

interface MediaType {
  type: string;
  compat: number | undefined;
  raw: string;
}

function parseMediaType(value: string): MediaType | null {
  const [typePart, ...params] = value.split(';');
  const type = (typePart ?? '').trim().toLowerCase();
  if (!/^[a-z*]+\/[a-z0-9.+*-]+$/.test(type)) return null;
  let compat: number | undefined;
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim().toLowerCase());
    if (k === 'compatible-with') compat = Number(v);
  }
  return { type, compat, raw: value.trim() };
}

const PLAIN = new Set(['application/json', 'application/x-ndjson', 'application/smile', 'application/cbor', 'application/yaml']);

function vendorOf(type: string): string | undefined {
  const m = /^application\/vnd\.(elasticsearch|opensearch)\+(json|x-ndjson|smile|cbor|yaml)$/.exec(type);
  return m?.[1];
}

function headerError(headers: string, detail: string): EsError {
  return EsError.of(400, cause('media_type_header_exception', `Invalid media-type value on headers [${headers}]`, undefined, cause('status_exception', detail)));
}

/** Validates Content-Type and Accept like ES's RestCompatibleVersionHelper and returns the response content type. */
export function negotiate(headers: IncomingHttpHeaders, flavor: FlavorInfo, hasBody: boolean): string {
  const contentTypeHeader = headers['content-type'];
  let content: MediaType | null = null;
  if (hasBody) {
    if (contentTypeHeader === undefined) throw simpleError(406, 'Content-Type header is missing');
    content = parseMediaType(contentTypeHeader);
    const vendor = content ? vendorOf(content.type) : undefined;
    const acceptable = content && (PLAIN.has(content.type) || vendor === flavor.vendor);
    if (!content || !acceptable) throw simpleError(406, `Content-Type header [${contentTypeHeader}] is not supported`);
  }
  const acceptHeader = headers.accept;
  const accepts = (acceptHeader ?? '').split(',').map((a) => parseMediaType(a)).filter((a): a is MediaType => a !== null);
  const vendoredAccept = accepts.find((a) => vendorOf(a.type) === flavor.vendor);
  if (flavor.isOpenSearch) return flavor.jsonContentType;

  const valid = flavor.compatVersions;
  const describe = `version must be either version ${[...valid].reverse().join(' or ')}`;
  const aVersion = vendoredAccept?.compat;
  const vendoredContent = content && vendorOf(content.type) ? content : null;
  const cVersion = vendoredContent?.compat;
  const acceptVersion = aVersion ?? flavor.major;
  if (!valid.includes(acceptVersion)) {
    throw headerError('Content-Type, Accept', `Accept ${describe}, but found ${acceptVersion}. Accept=${acceptHeader}`);
  }
  if (content) {
    const contentVersion = cVersion ?? flavor.major;
    if (!valid.includes(contentVersion)) {
      throw headerError('Content-Type, Accept', `Content-Type ${describe}, but found ${contentVersion}. Content-Type=${contentTypeHeader}`);
    }
    const required = 'A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version';
    if (contentVersion !== acceptVersion) {
      throw headerError('Content-Type, Accept', `${required} and the compatible versions must match. Accept=${acceptHeader}, Content-Type=${contentTypeHeader}`);
    }
    if ((cVersion === undefined) !== (aVersion === undefined)) {
      throw headerError('Content-Type, Accept', `${required}. Accept=${acceptHeader}, Content-Type=${contentTypeHeader}`);
    }
  }
  const compat = aVersion;
  return compat === undefined ? flavor.jsonContentType : `application/vnd.elasticsearch+json;compatible-with=${compat}`;
}
