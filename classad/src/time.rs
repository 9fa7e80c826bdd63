//! Absolute and relative times: libclassad's string forms, and the C time
//! calls its time functions make.
//!
//! libclassad interprets times without an explicit zone in the process's
//! local zone (`TZ`), through the C library; so do we, through `libc`, so
//! that results agree byte for byte. HTCondor daemons and our tests run with
//! the zone they are given.

use super::ast::AbsTime;
use super::lexer::{from_chars_i64, strtod_prefix};

/// Broken-down time, as C's `struct tm`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tm {
    pub sec: i32,
    pub min: i32,
    pub hour: i32,
    pub mday: i32,
    pub mon: i32,
    pub year: i32,
    pub wday: i32,
    pub yday: i32,
    pub isdst: i32,
    pub gmtoff: i64,
}

fn to_libc(tm: &Tm) -> libc::tm {
    // SAFETY: libc::tm is plain old data; all-zero is a valid value.
    let mut t: libc::tm = unsafe { std::mem::zeroed() };
    t.tm_sec = tm.sec;
    t.tm_min = tm.min;
    t.tm_hour = tm.hour;
    t.tm_mday = tm.mday;
    t.tm_mon = tm.mon;
    t.tm_year = tm.year;
    t.tm_wday = tm.wday;
    t.tm_yday = tm.yday;
    t.tm_isdst = tm.isdst;
    t.tm_gmtoff = tm.gmtoff as libc::c_long;
    t
}

fn from_libc(t: &libc::tm) -> Tm {
    Tm {
        sec: t.tm_sec,
        min: t.tm_min,
        hour: t.tm_hour,
        mday: t.tm_mday,
        mon: t.tm_mon,
        year: t.tm_year,
        wday: t.tm_wday,
        yday: t.tm_yday,
        isdst: t.tm_isdst,
        gmtoff: t.tm_gmtoff,
    }
}

pub fn localtime(secs: i64) -> Tm {
    let clock = secs as libc::time_t;
    // SAFETY: localtime_r writes only into the struct we pass.
    unsafe {
        let mut t: libc::tm = std::mem::zeroed();
        libc::localtime_r(&clock, &mut t);
        from_libc(&t)
    }
}

pub fn gmtime(secs: i64) -> Tm {
    let clock = secs as libc::time_t;
    // SAFETY: gmtime_r writes only into the struct we pass.
    unsafe {
        let mut t: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&clock, &mut t);
        from_libc(&t)
    }
}

/// `mktime`: broken-down local time to seconds; `None` where C returns -1.
pub fn mktime(tm: &Tm) -> Option<i64> {
    let mut t = to_libc(tm);
    // SAFETY: mktime reads and normalises the struct we own.
    let r = unsafe { libc::mktime(&mut t) };
    (r != -1).then_some(r as i64)
}

/// `strftime` into at most 1023 bytes, as libclassad's formatTime does.
pub fn strftime(format: &[u8], tm: &Tm) -> Vec<u8> {
    let mut fmt = format.to_vec();
    if fmt.contains(&0) {
        fmt.truncate(fmt.iter().position(|&b| b == 0).unwrap_or(0));
    }
    fmt.push(0);
    let t = to_libc(tm);
    let mut out = vec![0u8; 1024];
    // SAFETY: the format is NUL-terminated and the buffer length is passed.
    let n = unsafe {
        libc::strftime(
            out.as_mut_ptr() as *mut libc::c_char,
            1023,
            fmt.as_ptr() as *const libc::c_char,
            &t,
        )
    };
    if n == 0 {
        // C leaves the buffer's contents indeterminate; libclassad then reads
        // the (zeroed) stack buffer, in practice an empty string.
        return Vec::new();
    }
    out.truncate(n);
    out
}

/// Seconds east of UTC of the local zone at `secs`; with `no_dst`, the
/// daylight-saving hour is taken off.
pub fn timezone_offset(secs: i64, no_dst: bool) -> i64 {
    let tm = localtime(secs);
    let mut off = tm.gmtoff;
    if no_dst && tm.isdst != 0 {
        off -= 3600;
    }
    off
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn atoi(s: &[u8]) -> i32 {
    let mut i = 0;
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + i64::from(s[i] - b'0')).min(i64::from(u32::MAX));
        i += 1;
    }
    let v = if neg { -v } else { v };
    v as i32
}

fn substr(s: &[u8], at: usize, n: usize) -> &[u8] {
    let start = at.min(s.len());
    &s[start..(start + n).min(s.len())]
}

/// `absTime("...")` at parse time: `D* dddd [D* dd [D* dd [D* dd [D* dd
/// [D* dd D*]]]]] [-dd:dd | +dd:dd | z | Z]` (D a non-digit).
pub fn parse_abstime(text: &[u8]) -> Option<AbsTime> {
    let mut s = text.to_vec();
    let mut tz_hr = 0i64;
    let mut tz_min = 0i64;
    let mut offset_given = false;
    let len = s.len() as isize;
    let mut i = len - 1;
    while i >= 0 && is_space(s[i as usize]) {
        i -= 1;
    }
    let ulen = s.len();
    if i > 0 && (s[i as usize] == b'z' || s[i as usize] == b'Z') {
        offset_given = true;
        s.remove(i as usize);
    } else if ulen > 5 && (s[ulen - 5] == b'+' || s[ulen - 5] == b'-') {
        offset_given = extract_zone(&mut s, &mut tz_hr, &mut tz_min);
    } else if ulen > 6 && (s[ulen - 6] == b'+' || s[ulen - 6] == b'-') && s[ulen - 3] == b':' {
        s.remove(ulen - 3);
        offset_given = extract_zone(&mut s, &mut tz_hr, &mut tz_min);
    }
    let len = s.len();
    let next_digit = |i: &mut usize| {
        while *i < len && !s[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    let mut tm = Tm::default();
    let mut i = 0usize;
    next_digit(&mut i);
    if (i as isize) > (len as isize) - 4 {
        return None;
    }
    tm.year = atoi(substr(&s, i, 4)) - 1900;
    i += 4;
    let mut fields = [
        &mut tm.mon,
        &mut tm.mday,
        &mut tm.hour,
        &mut tm.min,
        &mut tm.sec,
    ];
    for (k, f) in fields.iter_mut().enumerate() {
        next_digit(&mut i);
        if (i as isize) <= (len as isize) - 2 {
            let v = atoi(substr(&s, i, 2));
            **f = if k == 0 { v - 1 } else { v };
            i += 2;
        }
    }
    next_digit(&mut i);
    if i < len && s[i].is_ascii_digit() {
        return None;
    }
    let mut secs = mktime(&tm)?;
    let offset = if offset_given {
        tz_hr * 3600 + tz_min * 60
    } else {
        timezone_offset(secs, false)
    };
    secs += timezone_offset(secs, true);
    secs -= offset;
    if offset == -1 {
        return None;
    }
    Some(AbsTime {
        secs,
        offset: offset as i32,
    })
}

fn extract_zone(s: &mut Vec<u8>, hr: &mut i64, min: &mut i64) -> bool {
    let len = s.len();
    if len < 5 {
        return false;
    }
    let off = s[len - 5..].to_vec();
    if (off[0] == b'+' || off[0] == b'-') && off[1..].iter().all(u8::is_ascii_digit) {
        s.truncate(len - 5);
        let h = i64::from(atoi(&off[1..3]));
        let m = i64::from(atoi(&off[3..5]));
        if off[0] == b'+' {
            *hr = h;
            *min = m;
        } else {
            *hr = -h;
            *min = -m;
        }
        true
    } else {
        false
    }
}

/// `relTime("...")` at parse time: `[-][[[days+]hh:]mm:]ss[.frac]`, also
/// with `d`, `h`, `m`, `s` suffixes.
pub fn parse_reltime(s: &[u8]) -> Option<f64> {
    let mut i = s.len() as isize - 1;
    let at = |i: isize| -> u8 {
        if i >= 0 {
            s[i as usize]
        } else {
            0
        }
    };
    let skip_space = |i: &mut isize| {
        while *i >= 0 && is_space(s[*i as usize]) {
            *i -= 1;
        }
    };
    let take_digits_rev = |i: &mut isize| -> Vec<u8> {
        let mut v = Vec::new();
        while *i >= 0 && s[*i as usize].is_ascii_digit() {
            v.push(s[*i as usize]);
            *i -= 1;
        }
        v.reverse();
        v
    };
    let rev_int = |digits: &[u8]| -> i64 {
        // from_chars into an int: out-of-range leaves 0
        let v = from_chars_i64(digits);
        if v > i64::from(i32::MAX) || v < i64::from(i32::MIN) {
            0
        } else {
            v
        }
    };
    let mut secs = 0.0f64;
    let (mut mins, mut hrs, mut days) = (0i64, 0i64, 0i64);
    let mut negative = false;
    skip_space(&mut i);
    let c = at(i);
    if i >= 0 && (c == b's' || c == b'S' || c.is_ascii_digit()) {
        if c == b's' || c == b'S' {
            i -= 1;
        }
        skip_space(&mut i);
        let mut num = take_digits_rev(&mut i);
        if i >= 0 && at(i) == b'.' {
            i -= 1;
            let int_part = take_digits_rev(&mut i);
            let mut full = int_part;
            full.push(b'.');
            full.extend_from_slice(&num);
            num = full;
        }
        secs = strtod_prefix(&num).0;
    }
    for (units, slot) in [(b"mM:", &mut mins), (b"hH:", &mut hrs), (b"dD+", &mut days)] {
        skip_space(&mut i);
        if i >= 0 && units.contains(&at(i)) {
            i -= 1;
            skip_space(&mut i);
            *slot = rev_int(&take_digits_rev(&mut i));
        }
    }
    skip_space(&mut i);
    if i >= 0 && at(i) == b'-' {
        negative = true;
        i -= 1;
    }
    skip_space(&mut i);
    if i >= 0 && !is_space(at(i)) {
        return None;
    }
    // The C code sums in int before converting: keep its wrap-around.
    let whole = (days as i32)
        .wrapping_mul(86400)
        .wrapping_add((hrs as i32).wrapping_mul(3600))
        .wrapping_add((mins as i32).wrapping_mul(60));
    let total = f64::from(whole) + secs;
    Some(if negative { -total } else { total })
}

/// `absTime` text: `2020-01-01T00:01:00-00:00`.
pub fn abstime_to_string(t: AbsTime, out: &mut Vec<u8>) {
    let tm = gmtime(t.secs.wrapping_add(i64::from(t.offset)));
    out.extend_from_slice(&strftime(b"%Y-%m-%dT%H:%M:%S", &tm));
    // libclassad negates an int here; the compiler's code behaves as if
    // the arithmetic were wider, so i64 reproduces its text for INT_MIN.
    let mut tz = i64::from(t.offset);
    let sign = if tz > 0 {
        '+'
    } else {
        tz = -tz;
        '-'
    };
    let s = format!("{sign}{:02}:{:02}", tz / 3600, (tz / 60) % 60);
    out.extend_from_slice(s.as_bytes());
}

/// `relTime` text: `[-][days+]hh:mm:ss[.frac]`, shortest form.
pub fn reltime_to_string(mut r: f64, out: &mut Vec<u8>) {
    if r < 0.0 {
        out.push(b'-');
        r = -r;
    }
    let frac = r - r.floor();
    let whole = crate::value::c_double_to_i32(r);
    let days = whole / 86400;
    let hrs = (whole % 86400) / 3600;
    let mins = (whole % 3600) / 60;
    let secs = f64::from(whole % 60) + frac;
    let g = |v: f64| crate::value::fmt_g(v, 6, 2);
    let s = if days != 0 {
        if frac == 0.0 {
            format!("{days}+{hrs:02}:{mins:02}:{:02}", secs as i32)
        } else {
            format!("{days}+{hrs:02}:{mins:02}:{}", g(secs))
        }
    } else if hrs != 0 {
        if frac == 0.0 {
            format!("{hrs:02}:{mins:02}:{:02}", secs as i32)
        } else {
            format!("{hrs:02}:{mins:02}:{}", g(secs))
        }
    } else if mins != 0 {
        if frac == 0.0 {
            format!("{mins:02}:{:02}", secs as i32)
        } else {
            format!("{mins:02}:{}", g(secs))
        }
    } else if frac == 0.0 {
        format!("{:02}", secs as i32)
    } else {
        g(secs)
    };
    out.extend_from_slice(s.as_bytes());
}
