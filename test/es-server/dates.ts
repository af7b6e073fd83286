/** Date handling for `date` fields: named ES formats and Java-style patterns, matched loosely by shape. */

const TZ = '(?:Z|[+-]\\d{2}(?::?\\d{2})?)';
const FRACTION = '(?:[.,]\\d{1,9})';
const ISO_OPTIONAL = new RegExp(
  `^[+-]?\\d{4,9}(?:-\\d{2}(?:-\\d{2}(?:T\\d{2}(?::\\d{2}(?::\\d{2}${FRACTION}?)?)?)?)?)?${TZ}?$`,
);
const LENIENT_OPTIONAL = new RegExp(
  `^[+-]?\\d{1,9}(?:-\\d{1,2}(?:-\\d{1,2}(?:T\\d{1,2}(?::\\d{1,2}(?::\\d{1,2}${FRACTION}?)?)?)?)?)?${TZ}?$`,
);

const NAMED: Record<string, RegExp> = {
  strict_date_optional_time: ISO_OPTIONAL,
  strict_date_optional_time_nanos: ISO_OPTIONAL,
  date_optional_time: LENIENT_OPTIONAL,
  iso8601: LENIENT_OPTIONAL,
  strict_date: /^\d{4}-\d{2}-\d{2}$/,
  date: /^\d{1,9}-\d{1,2}-\d{1,2}$/,
  strict_year_month_day: /^\d{4}-\d{2}-\d{2}$/,
  year_month_day: /^\d{1,9}-\d{1,2}-\d{1,2}$/,
  strict_year_month: /^\d{4}-\d{2}$/,
  strict_year: /^\d{4}$/,
  strict_date_time: new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}${FRACTION}${TZ}$`),
  date_time: new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}${FRACTION}${TZ}$`),
  strict_date_time_no_millis: new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}${TZ}$`),
  date_time_no_millis: new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}${TZ}$`),
  strict_date_hour_minute_second: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/,
  strict_date_hour_minute_second_millis: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$/,
  strict_date_hour_minute_second_fraction: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}$/,
  strict_hour_minute_second: /^\d{2}:\d{2}:\d{2}$/,
  basic_date: /^\d{8}$/,
  basic_date_time: new RegExp(`^\\d{8}T\\d{6}\\.\\d{3}${TZ}$`),
  basic_date_time_no_millis: new RegExp(`^\\d{8}T\\d{6}${TZ}$`),
};

const compiled = new Map<string, RegExp>();

/** Java DateTimeFormatter pattern → regex (shape only: digits where digits go). */
function patternToRegex(pattern: string): RegExp {
  let re = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern.charAt(i);
    if (ch === "'") {
      const end = pattern.indexOf("'", i + 1);
      const lit = pattern.slice(i + 1, end < 0 ? pattern.length : end);
      re += lit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i = end < 0 ? pattern.length : end + 1;
      continue;
    }
    if (ch === '[') { re += '(?:'; i++; continue; }
    if (ch === ']') { re += ')?'; i++; continue; }
    let n = 1;
    while (pattern.charAt(i + n) === ch) n++;
    i += n;
    if ('yuY'.includes(ch)) re += n === 2 ? '\\d{2}' : '[+-]?\\d{4,9}';
    else if (ch === 'M' || ch === 'L') re += n >= 4 ? '[A-Za-z]+' : n === 3 ? '[A-Za-z]{3}' : '\\d{1,2}';
    else if ('dHhkKmsDe'.includes(ch)) re += '\\d{1,' + Math.max(2, n) + '}';
    else if (ch === 'S' || ch === 'n') re += `\\d{1,${Math.max(n, 9)}}`;
    else if (ch === 'a') re += '(?:AM|PM|am|pm)';
    else if (ch === 'E') re += '[A-Za-z]+';
    else if (ch === 'Z') re += '(?:Z|[+-]\\d{2}:?\\d{2})';
    else if (ch === 'X' || ch === 'x') re += TZ;
    else if (ch === 'z' || ch === 'V' || ch === 'O') re += '[A-Za-z_/+\\-:0-9]+';
    else re += ch.repeat(n).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function formatRegex(format: string): RegExp {
  let re = compiled.get(format);
  if (!re) {
    re = NAMED[format] ?? NAMED[format.replace(/^strict_/, '')] ?? patternToRegex(format);
    compiled.set(format, re);
  }
  return re;
}

export const DEFAULT_DATE_FORMAT = 'strict_date_optional_time||epoch_millis';

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const CALENDAR = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2}))?)?)?/;

function plausibleCalendar(value: string): boolean {
  const m = CALENDAR.exec(value);
  if (!m) return true;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > (month === 2 && !leap ? 28 : (DAYS[month - 1] as number))) return false;
  return Number(m[4] ?? 0) < 24 && Number(m[5] ?? 0) < 60 && Number(m[6] ?? 0) < 60;
}

const formatLists = new Map<string, string[]>();
const splitFormats = (format: string): string[] => {
  let list = formatLists.get(format);
  if (!list) formatLists.set(format, (list = format.split('||')));
  return list;
};

const TIME_TAIL = /T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/y;
const digit = (s: string, i: number): number => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : NaN;
};

/** `yyyy-MM-dd[THH:mm[:ss[.S]]][zone]` checked without regex captures (the common case on the write path). */
function fastIso(value: string): boolean | undefined {
  if (value.length < 10 || value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45) return undefined;
  const year = digit(value, 0) * 1000 + digit(value, 1) * 100 + digit(value, 2) * 10 + digit(value, 3);
  const month = digit(value, 5) * 10 + digit(value, 6);
  const day = digit(value, 8) * 10 + digit(value, 9);
  if (Number.isNaN(year + month + day)) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > (month === 2 && !leap ? 28 : (DAYS[month - 1] as number))) return false;
  if (value.length === 10) return true;
  TIME_TAIL.lastIndex = 10;
  if (!TIME_TAIL.test(value)) return false;
  const hour = digit(value, 11) * 10 + digit(value, 12);
  const minute = value.charCodeAt(13) === 58 ? digit(value, 14) * 10 + digit(value, 15) : 0;
  const second = value.charCodeAt(16) === 58 ? digit(value, 17) * 10 + digit(value, 18) : 0;
  return hour < 24 && minute < 60 && second < 60;
}

/** Whether a JSON value parses as a date under an ES format list (`a||b`). */
export function isValidDate(value: unknown, format = DEFAULT_DATE_FORMAT): boolean {
  if (typeof value === 'string' && (format === DEFAULT_DATE_FORMAT || format === 'strict_date_optional_time')) {
    const fast = fastIso(value);
    if (fast !== undefined) return fast;
  }
  const formats = splitFormats(format);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return false;
    if (formats.some((f) => f === 'epoch_millis' || f === 'epoch_second')) return true;
    value = String(value);
  }
  if (typeof value !== 'string') return false;
  const text = value;
  return formats.some((f) => {
    if (f === 'epoch_millis' || f === 'epoch_second') return /^-?\d+(\.\d+)?$/.test(text);
    return formatRegex(f).test(text) && plausibleCalendar(text);
  });
}

/** Strings that dynamic mapping turns into `date` (ES date_detection with strict_date_optional_time). */
export function looksLikeDate(value: string): boolean {
  return value.length >= 10 && /^\d{4}-\d{2}-\d{2}/.test(value) && ISO_OPTIONAL.test(value) && plausibleCalendar(value);
}

/** Epoch millis for sorting and range queries; NaN when it cannot be read. */
export function dateToMillis(value: unknown, format = DEFAULT_DATE_FORMAT): number {
  if (typeof value === 'number') return format.startsWith('epoch_second') ? value * 1000 : value;
  if (typeof value !== 'string') return NaN;
  if (/^-?\d+$/.test(value) && !/^\d{4}$/.test(value)) return Number(value);
  let text = value.includes('T') || !value.includes(' ') ? value : value.replace(' ', 'T');
  if (/T\d{2}(:\d{2}){0,2}([.,]\d+)?$/.test(text)) text += 'Z';
  return Date.parse(text);
}
