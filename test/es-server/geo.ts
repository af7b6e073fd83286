import { cause, type Cause } from './errors.js';

const GEOHASH = /^[0-9b-hjkmnp-z]{1,12}$/;
const NUM = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

function range(lat: number, lon: number): Cause | undefined {
  if (!Number.isFinite(lat) || lat < -90 || lat > 90) return cause('illegal_argument_exception', `illegal latitude value [${lat}] for location`);
  if (!Number.isFinite(lon) || lon < -180 || lon > 180) return cause('illegal_argument_exception', `illegal longitude value [${lon}] for location`);
  return undefined;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && NUM.test(v) ? Number(v) : NaN);

/** geo_point accepts {lat, lon}, GeoJSON points, "lat,lon", geohashes, WKT POINT and [lon, lat]. */
export function checkGeoPoint(value: unknown): Cause | undefined {
  if (Array.isArray(value)) {
    if (value.length < 2 || value.length > 3 || !value.every((v) => typeof v === 'number')) {
      return cause('parse_exception', 'geo_point expected');
    }
    return range(value[1] as number, value[0] as number);
  }
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if (o.type !== undefined || o.coordinates !== undefined) {
      const c = o.coordinates;
      if (String(o.type).toLowerCase() !== 'point' || !Array.isArray(c) || c.length < 2) {
        return cause('parse_exception', 'field [type] must be [Point] and [coordinates] an array of numbers');
      }
      return range(num(c[1]), num(c[0]));
    }
    for (const k of Object.keys(o)) {
      if (k !== 'lat' && k !== 'lon' && k !== 'z') return cause('parse_exception', 'field must be either [lat], [lon] or [z]');
    }
    if (o.lat === undefined) return cause('parse_exception', 'field [lat] missing');
    if (o.lon === undefined) return cause('parse_exception', 'field [lon] missing');
    const lat = num(o.lat);
    const lon = num(o.lon);
    if (Number.isNaN(lat)) return cause('parse_exception', 'latitude must be a number');
    if (Number.isNaN(lon)) return cause('parse_exception', 'longitude must be a number');
    return range(lat, lon);
  }
  if (typeof value === 'string') {
    const wkt = /^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$/i.exec(value);
    if (wkt) return range(num(wkt[2]), num(wkt[1]));
    const parts = value.split(',');
    if (parts.length === 2 || parts.length === 3) {
      const lat = num(parts[0]);
      const lon = num(parts[1]);
      if (Number.isNaN(lat) || Number.isNaN(lon)) return cause('illegal_argument_exception', `[${value}] is not a valid point`);
      return range(lat, lon);
    }
    if (GEOHASH.test(value)) return undefined;
    return cause('illegal_argument_exception', `unsupported symbol [${value.replace(/[0-9b-hjkmnp-z]/g, '').charAt(0) || value.charAt(0)}] in geohash [${value}]`);
  }
  return cause('parse_exception', 'geo_point expected');
}
