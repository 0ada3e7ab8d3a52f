// Recovery target times: parsed exactly (to the microsecond), with an explicit UTC offset required.
import { z } from 'zod';
import { UsageError } from '../errors.js';

export interface TargetTime {
  /** Microseconds since the epoch (fits a double exactly until year 2255). */
  epochUs: number;
  /** Normalised for pgBackRest and PostgreSQL: `2026-01-19 10:40:00.000000+00`. */
  text: string;
}

/** A parsed target in a command's options schema. */
export const targetTimeSchema: z.ZodType<TargetTime> = z.object({ epochUs: z.number(), text: z.string() });

const FORM = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;
const ACCEPTED = 'accepted forms: "2026-01-19 10:40:00+00", "2026-01-19 10:40:00.123456+01:00", "2026-01-19T10:40:00Z"';

export function parseTarget(value: string): TargetTime {
  const v = value.trim();
  const m = FORM.exec(v);
  if (!m) {
    const bare = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v);
    const why = bare ? 'it has no UTC offset, so it could mean any time zone' : 'it is not a timestamp';
    throw new UsageError(`invalid target time "${value}": ${why}`, [`pgmam: invalid target time "${value}": ${why}`, `  hint: ${ACCEPTED}`]);
  }
  const [, y, mo, d, h, mi, s = '0', frac = '', off] = m;
  const offset = off!.toUpperCase() === 'Z' ? 0 : offsetMinutes(off!);
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (check.getUTCFullYear() !== Number(y) || check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59)
    throw new UsageError(`invalid target time "${value}": no such date or time`, [`pgmam: invalid target time "${value}": no such date or time`, `  hint: ${ACCEPTED}`]);
  const epochUs = (ms - offset * 60_000) * 1000 + Number(frac.padEnd(6, '0'));
  return { epochUs, text: formatUs(epochUs) };
}

function offsetMinutes(off: string): number {
  const sign = off.startsWith('-') ? -1 : 1;
  const digits = off.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
}

export function formatUs(epochUs: number): string {
  const ms = Math.floor(epochUs / 1000);
  const iso = new Date(ms).toISOString(); // 2026-01-19T10:40:00.123Z
  const micros = String(epochUs - Math.floor(epochUs / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros}+00`;
}

/** PostgreSQL's text timestamps (`2026-11-22 05:29:03.05234+00`) → epoch µs. */
export function parsePgTimestamp(text: string): number | undefined {
  try {
    return parseTarget(text).epochUs;
  } catch {
    return undefined;
  }
}
