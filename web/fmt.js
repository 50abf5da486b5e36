/*
 * fmt.js - formatting of times, durations and dates for display.
 *
 * Key idea: the API speaks ISO-8601 UTC ("2026-11-29T05:58:01.202Z"); the UI
 * shows local time, compact ("Nov 29 06:58:01"), with the full ISO string in
 * the title attribute, and durations as "1h 02m", "3m 05s", "4.2 s", "35 ms".
 */

export function ms(iso) {
    if (!iso) return NaN;
    const t = Date.parse(iso);
    return isNaN(t) ? NaN : t;
}

const pad = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/* "Nov 29 06:58:01" in local time (the year only when it is not this year). */
export function time(iso) {
    const t = ms(iso);
    if (isNaN(t)) return '—';
    const d = new Date(t), now = new Date();
    const y = d.getFullYear() === now.getFullYear() ? '' : d.getFullYear() + ' ';
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return `${y}${MONTHS[d.getMonth()]} ${d.getDate()} ${hms}`;
}

/* A logical date: "2026-11-28" for midnight-UTC dates, else the local time. */
export function logical(iso) {
    if (!iso) return '—';
    if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) return iso;
    if (/T00:00:00(\.000)?Z$/.test(iso)) return iso.slice(0, 10);
    return time(iso);
}

/* A time on a DAG's own clock, from the API's "..._local" string ("2026-03-29T03:00:00+02:00")
 * and the zone's name: "2026-03-29 03:00 Europe/Berlin"; '' for UTC DAGs (the UI shows the
 * browser's local time everywhere else). */
export function zoned(local, tz) {
    if (!local || !tz || tz === 'UTC') return '';
    return `${local.slice(0, 10)} ${local.slice(11, 16)} ${tz}`;
}

/* An ISO instant on the clock of IANA zone tz: "2026-03-29 03:00 Europe/Berlin"; '' for UTC,
 * no zone, or a browser that does not know the zone. */
export function inZone(iso, tz) {
    const t = ms(iso);
    if (isNaN(t) || !tz || tz === 'UTC') return '';
    try {
        const p = {};
        new Intl.DateTimeFormat('en-GB', {timeZone: tz, year: 'numeric', month: '2-digit',
                                          day: '2-digit', hour: '2-digit', minute: '2-digit',
                                          hourCycle: 'h23'})
            .formatToParts(new Date(t)).forEach((x) => { p[x.type] = x.value; });
        return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${tz}`;
    } catch (e) {
        return '';
    }
}

/* Seconds as a short duration. */
export function duration(s) {
    if (s === null || s === undefined || isNaN(s)) return '—';
    if (s < 0) s = 0;
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    const m = Math.floor(s / 60), sec = Math.round(s % 60);
    if (m < 60) return `${m}m ${pad(sec)}s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
    return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

/* "in 3h 10m" / "5m 02s ago" relative to now. */
export function relative(iso) {
    const t = ms(iso);
    if (isNaN(t)) return '';
    const d = (t - Date.now()) / 1000;
    return d >= 0 ? 'in ' + duration(d) : duration(-d) + ' ago';
}
