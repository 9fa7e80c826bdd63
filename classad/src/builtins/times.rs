//! Time functions. `time()` and friends read the evaluator's `now`, never
//! the system clock; local-zone conversions go through the C library as
//! libclassad's do.

use super::super::ast::{AbsTime, ClassAd, Expr};
use super::super::eval::{Eval, Evaluator, Fail};
use super::super::time::{gmtime, localtime, strftime, timezone_offset, Tm};
use super::super::value::{c_double_to_i32, reltime_secs, Value};
use super::Builtin;

type Args<'e> = &'e [Expr];

fn fixed_from_gregorian(year: i32, month: i32, day: i32) -> i32 {
    let leap = year % 4 == 0 && ![100, 200, 300].contains(&(year % 400));
    let adj = if month <= 2 {
        0
    } else if leap {
        -1
    } else {
        -2
    };
    365 * (year - 1) + (year - 1) / 4 - (year - 1) / 100
        + (year - 1) / 400
        + (367 * month - 362) / 12
        + adj
        + day
}

fn abs_time_ad(t: AbsTime) -> ClassAd {
    let tm = gmtime(t.secs + i64::from(t.offset));
    let mut ad = ClassAd::with_capacity(8);
    ad.insert_str("Type", Expr::string("AbsoluteTime"));
    ad.insert_str("Year", Expr::Int(i64::from(tm.year) + 1900));
    ad.insert_str("Month", Expr::Int(i64::from(tm.mon) + 1));
    ad.insert_str("Day", Expr::Int(i64::from(tm.mday)));
    ad.insert_str("Hours", Expr::Int(i64::from(tm.hour)));
    ad.insert_str("Minutes", Expr::Int(i64::from(tm.min)));
    ad.insert_str("Seconds", Expr::Int(i64::from(tm.sec)));
    ad.insert_str("Offset", Expr::Int(i64::from(t.offset)));
    ad
}

fn rel_time_ad(mut r: f64) -> ClassAd {
    let negative = r < 0.0;
    if negative {
        r = -r;
    }
    let whole = c_double_to_i32(r);
    let mut days = whole / 86400;
    let mut hrs = (whole % 86400) / 3600;
    let mut mins = (whole % 3600) / 60;
    let mut secs = f64::from(whole % 60) + (r - r.floor());
    if negative {
        if days > 0 {
            days = -days;
        } else if hrs > 0 {
            hrs = -hrs;
        } else if mins > 0 {
            mins = -mins;
        } else {
            secs = -secs;
        }
    }
    let mut ad = ClassAd::with_capacity(5);
    ad.insert_str("Type", Expr::string("RelativeTime"));
    ad.insert_str("Days", Expr::Int(i64::from(days)));
    ad.insert_str("Hours", Expr::Int(i64::from(hrs)));
    ad.insert_str("Minutes", Expr::Int(i64::from(mins)));
    ad.insert_str("Seconds", Expr::Real(secs));
    ad
}

impl<'e> Evaluator<'e> {
    fn local_offset(&self, secs: i64) -> i32 {
        timezone_offset(secs, false) as i32
    }

    /// libclassad's `doSplitTime`, for values other than ads.
    fn split_time_ad(&self, v: &Value<'e>) -> Option<ClassAd> {
        match *v {
            Value::Int(i) => Some(abs_time_ad(AbsTime {
                secs: i,
                offset: self.local_offset(i),
            })),
            Value::Real(r) => {
                let secs = i64::from(c_double_to_i32(r));
                Some(abs_time_ad(AbsTime {
                    secs,
                    offset: self.local_offset(secs),
                }))
            }
            Value::AbsTime(t) => Some(abs_time_ad(t)),
            Value::RelTime(r) => Some(rel_time_ad(r)),
            Value::Ad(a) => Some(a.ad.clone()),
            _ => None,
        }
    }

    pub(super) fn epoch_time(&mut self, args: Args<'e>) -> Eval<'e> {
        if !args.is_empty() {
            return Ok(Value::Error);
        }
        Ok(Value::Int(self.now))
    }

    pub(super) fn current_time(&mut self, args: Args<'e>) -> Eval<'e> {
        if !args.is_empty() {
            return Ok(Value::Error);
        }
        Ok(Value::AbsTime(AbsTime {
            secs: self.now,
            offset: self.local_offset(self.now),
        }))
    }

    pub(super) fn time_zone_offset(&mut self, args: Args<'e>) -> Eval<'e> {
        if !args.is_empty() {
            return Ok(Value::Error);
        }
        Ok(Value::RelTime(f64::from(self.local_offset(self.now))))
    }

    pub(super) fn day_time(&mut self, args: Args<'e>) -> Eval<'e> {
        if !args.is_empty() {
            return Ok(Value::Error);
        }
        let tm = localtime(self.now);
        Ok(Value::RelTime(f64::from(
            tm.hour * 3600 + tm.min * 60 + tm.sec,
        )))
    }

    pub(super) fn get_field(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        use Builtin as B;
        match self.eval(&args[0])? {
            Value::AbsTime(t) => {
                let tm = localtime(t.secs);
                Ok(Value::Int(i64::from(match f {
                    B::GetYear => tm.year + 1900,
                    B::GetMonth => tm.mon + 1,
                    B::GetDayOfYear => tm.yday,
                    B::GetDayOfMonth => tm.mday,
                    B::GetDayOfWeek => tm.wday,
                    B::GetHours => tm.hour,
                    B::GetMinutes => tm.min,
                    B::GetSeconds => tm.sec,
                    _ => return Ok(Value::Error),
                })))
            }
            Value::RelTime(r) => {
                let s = reltime_secs(r);
                Ok(Value::Int(match f {
                    B::GetDays => s / 86400,
                    B::GetHours => (s % 86400) / 3600,
                    B::GetMinutes => (s % 3600) / 60,
                    B::GetSeconds => s % 60,
                    _ => return Ok(Value::Error),
                }))
            }
            _ => Ok(Value::Error),
        }
    }

    pub(super) fn split_time(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        if v.is_undefined() {
            return Ok(Value::Undefined);
        }
        if matches!(v, Value::Ad(_)) {
            return Ok(Value::Error);
        }
        match self.split_time_ad(&v) {
            Some(ad) => {
                let e = self.arena.alloc(Expr::Ad(Box::new(ad)));
                let Expr::Ad(ad) = e else {
                    unreachable!("just allocated an ad")
                };
                let f = self.new_ad_frame(ad, None);
                Ok(self.ad_value(f, false))
            }
            None => Ok(Value::Error),
        }
    }

    pub(super) fn format_time(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.is_empty() {
            let tm = localtime(self.now);
            return Ok(Value::string(strftime(b"%c", &tm)));
        }
        if args.len() >= 3 {
            return Ok(Value::Error);
        }
        let t = self.eval(&args[0])?;
        if matches!(t, Value::RelTime(_)) {
            return Ok(Value::Error);
        }
        let Some(split) = self.split_time_ad(&t) else {
            return Ok(Value::Error);
        };
        let field = |name: &str| -> Option<i32> {
            match split.lookup(name) {
                Some(Expr::Int(i)) => Some(*i as i32),
                _ => None,
            }
        };
        let mut tm = Tm {
            sec: field("Seconds").unwrap_or(0),
            min: field("Minutes").unwrap_or(0),
            hour: field("Hours").unwrap_or(0),
            mday: field("Day").unwrap_or(0),
            mon: field("Month").map_or(0, |m| m - 1),
            year: field("Year").map_or(0, |y| y - 1900),
            ..Tm::default()
        };
        let fixed = fixed_from_gregorian(tm.year + 1900, tm.mon + 1, tm.mday);
        tm.wday = fixed % 7;
        tm.yday = fixed - fixed_from_gregorian(tm.year + 1900, 1, 1);
        let format = if args.len() == 1 {
            b"%c".to_vec()
        } else {
            match self.eval(&args[1])? {
                Value::Str(s) => s.into_owned(),
                _ => return Ok(Value::Error),
            }
        };
        Ok(Value::string(strftime(&format, &tm)))
    }

    pub(super) fn conv_time(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        let relative = f == Builtin::RelTime;
        if args.is_empty() && !relative {
            return self.current_time(args);
        }
        if args.is_empty() || args.len() > 2 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        let mut zone: Option<i32> = None;
        if args.len() == 2 {
            let z = self.eval(&args[1])?;
            if relative {
                return Ok(Value::Error);
            }
            zone = Some(match z {
                Value::Int(i) => i as i32,
                Value::Real(r) => c_double_to_i32(r),
                Value::RelTime(r) => reltime_secs(r) as i32,
                _ => return Ok(Value::Error),
            });
        }
        let abs_at = |ev: &Self, secs: i64| -> AbsTime {
            AbsTime {
                secs,
                offset: zone.unwrap_or_else(|| ev.local_offset(secs)),
            }
        };
        match v {
            Value::Undefined => Ok(Value::Undefined),
            Value::Int(i) => {
                let i = i64::from(i as i32);
                if relative {
                    return Ok(Value::RelTime(i as f64));
                }
                let t = abs_at(self, i);
                if t.offset == -1 {
                    return Err(Fail);
                }
                Ok(Value::AbsTime(t))
            }
            Value::Real(r) => {
                if relative {
                    return Ok(Value::RelTime(r));
                }
                Ok(Value::AbsTime(abs_at(self, i64::from(c_double_to_i32(r)))))
            }
            // A string that was not a literal falls through libclassad's
            // switch into the absolute-time case.
            Value::Str(_) => Ok(if relative { Value::RelTime(0.0) } else { v }),
            Value::AbsTime(t) => Ok(if relative {
                Value::RelTime(t.secs as f64)
            } else {
                v
            }),
            Value::RelTime(r) => {
                if relative {
                    return Ok(v);
                }
                Ok(Value::AbsTime(abs_at(self, reltime_secs(r))))
            }
            _ => Ok(Value::Error),
        }
    }
}
