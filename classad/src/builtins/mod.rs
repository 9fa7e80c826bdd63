//! Built-in functions: libclassad's core set and the HTCondor compat layer
//! that every daemon registers. Names are case-insensitive; an unknown name
//! evaluates to ERROR. Each function evaluates its own arguments, because
//! several are lazy (`ifThenElse`) or look at an argument's form
//! (`unparse`, `unresolved`, `evalInEachContext`).

mod compat;
mod core;
mod env_args;
pub mod regex;
mod strings;
mod times;

use super::ast::Call;
use super::eval::{Eval, Evaluator};
use super::value::Value;

macro_rules! builtins {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A built-in function, resolved from its name at parse time.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Builtin { $($variant),* }

        impl Builtin {
            pub fn lookup(name: &[u8]) -> Option<Builtin> {
                $(if name.eq_ignore_ascii_case($name.as_bytes()) { return Some(Builtin::$variant); })*
                None
            }

            pub fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name),* }
            }

            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant),*];
        }
    };
}

builtins! {
    IsUndefined => "isUndefined",
    IsError => "isError",
    IsString => "isString",
    IsInteger => "isInteger",
    IsReal => "isReal",
    IsList => "isList",
    IsClassAd => "isClassAd",
    IsBoolean => "isBoolean",
    IsAbsTime => "isAbsTime",
    IsRelTime => "isRelTime",
    Member => "member",
    IdenticalMember => "identicalMember",
    Size => "size",
    Sum => "sum",
    Avg => "avg",
    Min => "min",
    Max => "max",
    AnyCompare => "anyCompare",
    AllCompare => "allCompare",
    Time => "time",
    CurrentTime => "currentTime",
    TimeZoneOffset => "timeZoneOffset",
    DayTime => "dayTime",
    GetYear => "getYear",
    GetMonth => "getMonth",
    GetDayOfYear => "getDayOfYear",
    GetDayOfMonth => "getDayOfMonth",
    GetDayOfWeek => "getDayOfWeek",
    GetDays => "getDays",
    GetHours => "getHours",
    GetMinutes => "getMinutes",
    GetSeconds => "getSeconds",
    SplitTime => "splitTime",
    FormatTime => "formatTime",
    StrCat => "strcat",
    Join => "join",
    ToUpper => "toUpper",
    ToLower => "toLower",
    Substr => "substr",
    StrCmp => "strcmp",
    StrICmp => "stricmp",
    VersionCmp => "versioncmp",
    VersionLE => "versionLE",
    VersionLT => "versionLT",
    VersionGE => "versionGE",
    VersionGT => "versionGT",
    VersionEQ => "versionEQ",
    VersionInRange => "version_in_range",
    Regexp => "regexp",
    RegexpMember => "regexpMember",
    Regexps => "regexps",
    Replace => "replace",
    ReplaceAll => "replaceAll",
    Int => "int",
    Real => "real",
    String => "string",
    Bool => "bool",
    AbsTime => "absTime",
    RelTime => "relTime",
    Unparse => "unparse",
    Unresolved => "unresolved",
    Floor => "floor",
    Ceil => "ceil",
    Ceiling => "ceiling",
    Round => "round",
    Pow => "pow",
    Quantize => "quantize",
    Random => "random",
    IfThenElse => "ifThenElse",
    Interval => "interval",
    Eval => "eval",
    StringListsIntersect => "stringListsIntersect",
    Debug => "debug",
    EnvV1ToV2 => "envV1ToV2",
    MergeEnvironment => "mergeEnvironment",
    ListToArgs => "listToArgs",
    ArgsToList => "argsToList",
    StringListSize => "stringListSize",
    StringListSum => "stringListSum",
    StringListAvg => "stringListAvg",
    StringListMin => "stringListMin",
    StringListMax => "stringListMax",
    StringListMember => "stringListMember",
    StringListIMember => "stringListIMember",
    StringListSubsetMatch => "stringListSubsetMatch",
    StringListISubsetMatch => "stringListISubsetMatch",
    StringListRegexpMember => "stringList_regexpMember",
    UserHome => "userHome",
    UserMap => "userMap",
    SplitUserName => "splitUserName",
    SplitSlotName => "splitSlotName",
    Split => "split",
    EvalInEachContext => "evalInEachContext",
    CountMatches => "countMatches",
}

impl<'e> Evaluator<'e> {
    pub(super) fn call(&mut self, c: &'e Call) -> Eval<'e> {
        let Some(f) = c.func else {
            return Ok(Value::Error);
        };
        let args = &c.args[..];
        use Builtin as B;
        match f {
            B::IsUndefined
            | B::IsError
            | B::IsString
            | B::IsInteger
            | B::IsReal
            | B::IsList
            | B::IsClassAd
            | B::IsBoolean
            | B::IsAbsTime
            | B::IsRelTime => self.is_type(f, args),
            B::Member | B::IdenticalMember => self.member(f, args),
            B::Size => self.size(args),
            B::Sum | B::Avg => self.sum_avg(f, args),
            B::Min | B::Max => self.min_max(f, args),
            B::AnyCompare | B::AllCompare => self.list_compare(f, args),
            B::Time => self.epoch_time(args),
            B::CurrentTime => self.current_time(args),
            B::TimeZoneOffset => self.time_zone_offset(args),
            B::DayTime => self.day_time(args),
            B::GetYear
            | B::GetMonth
            | B::GetDayOfYear
            | B::GetDayOfMonth
            | B::GetDayOfWeek
            | B::GetDays
            | B::GetHours
            | B::GetMinutes
            | B::GetSeconds => self.get_field(f, args),
            B::SplitTime => self.split_time(args),
            B::FormatTime => self.format_time(args),
            B::StrCat | B::Join => self.str_cat(f, args),
            B::ToUpper | B::ToLower => self.change_case(f, args),
            B::Substr => self.substr(args),
            B::StrCmp | B::StrICmp => self.compare_string(f, args),
            B::VersionCmp
            | B::VersionLE
            | B::VersionLT
            | B::VersionGE
            | B::VersionGT
            | B::VersionEQ => self.compare_version(f, args),
            B::VersionInRange => self.version_in_range(args),
            B::Regexp => self.match_pattern(args),
            B::RegexpMember => self.match_pattern_member(args),
            B::Regexps | B::Replace | B::ReplaceAll => self.subst_pattern(f, args),
            B::Int => self.conv_int(args),
            B::Real => self.conv_real(args),
            B::String => self.conv_string(args),
            B::Bool => self.conv_bool(args),
            B::AbsTime | B::RelTime => self.conv_time(f, args),
            B::Unparse => self.unparse_fn(args),
            B::Unresolved => self.unresolved(args),
            B::Floor | B::Ceil | B::Ceiling | B::Round => self.do_round(f, args),
            B::Pow | B::Quantize => self.do_math2(f, args),
            B::Random => self.random(args),
            B::IfThenElse => self.if_then_else(args),
            B::Interval => self.interval(args),
            B::Eval => self.eval_fn(args),
            B::StringListsIntersect => self.string_lists_intersect(args),
            B::Debug => self.debug_fn(args),
            B::EnvV1ToV2 => self.env_v1_to_v2(args),
            B::MergeEnvironment => self.merge_environment(args),
            B::ListToArgs => self.list_to_args(args),
            B::ArgsToList => self.args_to_list(args),
            B::StringListSize => self.string_list_size(args),
            B::StringListSum | B::StringListAvg | B::StringListMin | B::StringListMax => {
                self.string_list_summarize(f, args)
            }
            B::StringListMember
            | B::StringListIMember
            | B::StringListSubsetMatch
            | B::StringListISubsetMatch => self.string_list_member(f, args),
            B::StringListRegexpMember => self.string_list_regexp_member(args),
            B::UserHome => self.user_home(args),
            B::UserMap => self.user_map(args),
            B::SplitUserName | B::SplitSlotName => self.split_at(f, args),
            B::Split => self.split_arb(args),
            B::EvalInEachContext | B::CountMatches => self.eval_in_each_context(f, args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Builtin;

    #[test]
    fn names_resolve_case_insensitively() {
        for b in Builtin::ALL {
            assert_eq!(
                Builtin::lookup(b.name().to_uppercase().as_bytes()),
                Some(*b)
            );
        }
        assert_eq!(Builtin::lookup(b"nosuchfunction"), None);
    }
}
