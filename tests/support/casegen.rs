//! A seeded generator of ClassAd test cases for the differential oracle:
//! every operator, every built-in with arguments of fitting and unfitting
//! types, every value type, scoping through MY/TARGET/absolute names,
//! UNDEFINED/ERROR propagation, parse errors, and match/symmetric cases on
//! job and machine ads from the real pool captures.
//!
//! Cases are text, built directly (not through our unparser) so that a bug
//! in the engine cannot hide itself.

use serde_json::{json, Value as Json};

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Attribute names shared by generated ads, so references cross between
/// MY and TARGET and sometimes miss.
const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "x",
    "y",
    "Memory",
    "Cpus",
    "RequestMemory",
    "RequestCpus",
    "Name",
    "OpSys",
    "Arch",
    "WantCloud",
    "CloudNode",
    "Owner",
    "L",
    "S",
    "N",
    "Missing",
];

const SCOPES: &[&str] = &["", "", "", "MY.", "TARGET.", "my.", "target.", "."];

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "10",
    "-1",
    "-7",
    "42",
    "1024",
    "2048",
    "4096",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "2147483647",
    "2147483648",
    "-2147483649",
    "100000000000",
];

const REALS: &[&str] = &[
    "0.0",
    "-0.0",
    "0.5",
    "1.0",
    "1.5",
    "2.5",
    "3.5",
    "-2.5",
    "0.1",
    "1e3",
    "1.5e300",
    "-1e308",
    "1e-300",
    "3.14159",
    "123456789.123",
    "2.0",
    "1E10",
    ".25",
];

const STRINGS: &[&str] = &[
    r#""""#,
    r#""a""#,
    r#""A""#,
    r#""abc""#,
    r#""ABC""#,
    r#""b""#,
    r#""LINUX""#,
    r#""linux""#,
    r#""X86_64""#,
    r#""a,b,c""#,
    r#""a, b ,c""#,
    r#""1,2,3""#,
    r#""1.5, 2.5""#,
    r#""-5,-3""#,
    r#""alice@example.org""#,
    r#""slot1@cloud-1""#,
    r#""10""#,
    r#""4x""#,
    r#""1e2""#,
    r#""true""#,
    r#""FALSE""#,
    r#""25.12.0""#,
    r#""8.9.11""#,
    r#""tab\there""#,
    r#""q\"uote""#,
    r#""back\\slash""#,
    r#""\101\102""#,
    r#""é""#,
    r#""line\nbreak""#,
    r#""  spaced  ""#,
    r#""2020-01-01T00:00:00Z""#,
    r#""1+02:03:04""#,
    r#""^a.*""#,
    r#""(a+)(b)""#,
    r#""xaab""#,
    r#""A=1 B=2""#,
    r#""A=1;B=2""#,
    r#""a 'b c' d""#,
    r#""%Y-%m-%d %H:%M:%S""#,
];

/// Built-ins with the argument kinds that make them do something (an
/// argument kind of '?' is any expression).
const CALLS: &[(&str, &[&str])] = &[
    ("isUndefined", &["?"]),
    ("isError", &["?"]),
    ("isString", &["?"]),
    ("isInteger", &["?"]),
    ("isReal", &["?"]),
    ("isList", &["?"]),
    ("isClassAd", &["?"]),
    ("isBoolean", &["?"]),
    ("isAbsTime", &["?"]),
    ("isRelTime", &["?"]),
    ("member", &["?", "list"]),
    ("identicalMember", &["?", "list"]),
    ("size", &["?"]),
    ("sum", &["list"]),
    ("avg", &["list"]),
    ("min", &["list"]),
    ("max", &["list"]),
    ("anyCompare", &["cmpop", "list", "?"]),
    ("allCompare", &["cmpop", "list", "?"]),
    ("getYear", &["time"]),
    ("getMonth", &["time"]),
    ("getDayOfYear", &["time"]),
    ("getDayOfMonth", &["time"]),
    ("getDayOfWeek", &["time"]),
    ("getDays", &["time"]),
    ("getHours", &["time"]),
    ("getMinutes", &["time"]),
    ("getSeconds", &["time"]),
    ("splitTime", &["time"]),
    ("formatTime", &["secs", "fmt"]),
    ("formatTime", &["time"]),
    ("strcat", &["?", "?", "?"]),
    ("join", &["str", "list"]),
    ("join", &["list"]),
    ("join", &["str", "?", "?"]),
    ("toUpper", &["?"]),
    ("toLower", &["?"]),
    ("substr", &["str", "int"]),
    ("substr", &["str", "int", "int"]),
    ("strcmp", &["?", "?"]),
    ("stricmp", &["?", "?"]),
    ("versioncmp", &["str", "str"]),
    ("versionLE", &["str", "str"]),
    ("versionLT", &["str", "str"]),
    ("versionGE", &["str", "str"]),
    ("versionGT", &["str", "str"]),
    ("versionEQ", &["str", "str"]),
    ("version_in_range", &["str", "str", "str"]),
    ("regexp", &["re", "str"]),
    ("regexp", &["re", "str", "reopt"]),
    ("regexpMember", &["re", "list"]),
    ("regexps", &["re", "str", "repl"]),
    ("regexps", &["re", "str", "repl", "reopt"]),
    ("replace", &["re", "str", "repl"]),
    ("replaceAll", &["re", "str", "repl"]),
    ("int", &["?"]),
    ("real", &["?"]),
    ("string", &["?"]),
    ("bool", &["?"]),
    ("absTime", &["secs"]),
    ("absTime", &["secs", "int"]),
    ("relTime", &["?"]),
    ("unparse", &["attr"]),
    ("unresolved", &["attr"]),
    ("floor", &["?"]),
    ("ceil", &["?"]),
    ("ceiling", &["?"]),
    ("round", &["?"]),
    ("pow", &["num", "num"]),
    ("quantize", &["num", "num"]),
    ("quantize", &["num", "list"]),
    ("ifThenElse", &["?", "?", "?"]),
    ("interval", &["?"]),
    ("eval", &["evalstr"]),
    ("stringListsIntersect", &["str", "str"]),
    ("debug", &["?"]),
    ("envV1ToV2", &["str"]),
    ("mergeEnvironment", &["str", "str"]),
    ("listToArgs", &["list"]),
    ("argsToList", &["str"]),
    ("argsToList", &["str", "int"]),
    ("stringListSize", &["str"]),
    ("stringListSum", &["str"]),
    ("stringListAvg", &["str"]),
    ("stringListMin", &["str"]),
    ("stringListMax", &["str"]),
    ("stringListMember", &["str", "str"]),
    ("stringListIMember", &["str", "str"]),
    ("stringListSubsetMatch", &["str", "str"]),
    ("stringListISubsetMatch", &["str", "str"]),
    ("stringList_regexpMember", &["re", "str"]),
    ("userHome", &["str", "str"]),
    ("userMap", &["str", "str"]),
    ("splitUserName", &["str"]),
    ("splitSlotName", &["str"]),
    ("split", &["str"]),
    ("split", &["str", "str"]),
    ("evalInEachContext", &["ctxexpr", "adlist"]),
    ("countMatches", &["?", "adlist"]),
    ("random", &["one"]),
    ("timeZoneOffset", &[]),
];

const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "=?=", "=!=", "is", "isnt", "&&",
    "||", "&", "|", "^", "<<", ">>", ">>>",
];

pub struct Gen {
    pub rng: Rng,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
        }
    }

    fn literal(&mut self) -> String {
        match self.rng.below(10) {
            0..=2 => self.rng.pick(INTS).to_string(),
            3..=4 => self.rng.pick(REALS).to_string(),
            5..=6 => self.rng.pick(STRINGS).to_string(),
            7 => self
                .rng
                .pick(&["true", "false", "TRUE", "False"])
                .to_string(),
            8 => "undefined".into(),
            _ => "error".into(),
        }
    }

    fn attr(&mut self) -> String {
        format!("{}{}", self.rng.pick(SCOPES), self.rng.pick(NAMES))
    }

    fn list(&mut self, depth: u32) -> String {
        let n = self.rng.below(5);
        let items: Vec<String> = (0..n).map(|_| self.expr(depth + 1)).collect();
        format!("{{{}}}", items.join(", "))
    }

    fn number_list(&mut self) -> String {
        let n = self.rng.below(5);
        let items: Vec<String> = (0..n)
            .map(|_| {
                if self.rng.chance(15) {
                    self.literal()
                } else if self.rng.chance(50) {
                    self.rng.pick(INTS).to_string()
                } else {
                    self.rng.pick(REALS).to_string()
                }
            })
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    /// A nested ad literal.
    pub fn ad_literal(&mut self, depth: u32) -> String {
        let n = self.rng.below(4);
        let attrs: Vec<String> = (0..n)
            .map(|_| format!("{} = {}", self.rng.pick(NAMES), self.expr(depth + 1)))
            .collect();
        format!("[{}]", attrs.join("; "))
    }

    fn typed(&mut self, kind: &str, depth: u32) -> String {
        // (The second argument of evalInEachContext stays a literal list: a
        // computed list there makes the official library use freed memory.)
        if !["secs", "one", "adlist", "ctxexpr", "time"].contains(&kind) && self.rng.chance(8) {
            return self.expr(depth + 1);
        }
        match kind {
            "list" => {
                if self.rng.chance(60) {
                    self.number_list()
                } else if self.rng.chance(50) {
                    let n = self.rng.below(4);
                    let items: Vec<String> =
                        (0..n).map(|_| self.rng.pick(STRINGS).to_string()).collect();
                    format!("{{{}}}", items.join(", "))
                } else {
                    self.list(depth)
                }
            }
            "adlist" => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "[Capability = {}; Name = {}; a = {}]",
                            self.rng.pick(REALS),
                            self.rng.pick(STRINGS),
                            self.rng.pick(INTS)
                        )
                    })
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            "cmpop" => self
                .rng
                .pick(&[
                    r#""<""#,
                    r#""<=""#,
                    r#""==""#,
                    r#""!=""#,
                    r#"">""#,
                    r#"">=""#,
                    r#""is""#,
                    r#""isnt""#,
                    r#""~""#,
                ])
                .to_string(),
            "time" => self
                .rng
                .pick(&[
                    r#"absTime("2020-01-01T00:00:00Z")"#,
                    r#"absTime("2024-02-29T13:45:10+02:00")"#,
                    r#"absTime("1999-12-31T23:59:59-05:30")"#,
                    r#"relTime("1+02:03:04")"#,
                    r#"relTime("-00:00:30")"#,
                    "absTime(1700000000)",
                    "absTime(0, 3600)",
                    "relTime(3725)",
                    "relTime(-90061)",
                    "1700000000",
                    "86399.75",
                ])
                .to_string(),
            "fmt" => self
                .rng
                .pick(&[
                    r#""%Y-%m-%d""#,
                    r#""%H:%M:%S""#,
                    r#""%j %a %b""#,
                    r#""%s""#,
                    "3",
                ])
                .to_string(),
            "int" => {
                if self.rng.chance(80) {
                    self.rng
                        .pick(&["0", "1", "2", "3", "-1", "-2", "5", "100", "1700000000"])
                        .to_string()
                } else {
                    self.rng.pick(INTS).to_string()
                }
            }
            "one" => "1".into(),
            // Times libclassad can convert (its gmtime results are garbage
            // outside the range a struct tm holds).
            "secs" => self
                .rng
                .pick(&[
                    "0",
                    "1",
                    "-1",
                    "86399",
                    "1700000000",
                    "2147483647",
                    "-2147483648",
                    "951782400",
                ])
                .to_string(),
            "num" => {
                if self.rng.chance(50) {
                    self.rng
                        .pick(&["0", "1", "2", "3", "-2", "10", "512", "1000", "4"])
                        .to_string()
                } else {
                    self.rng.pick(REALS).to_string()
                }
            }
            "str" => self.rng.pick(STRINGS).to_string(),
            "re" => self
                .rng
                .pick(&[
                    r#""^a""#,
                    r#""b+""#,
                    r#""(a+)(b)""#,
                    r#""[0-9]+""#,
                    r#""A""#,
                    r#""x*""#,
                    r#""(""#,
                    r#""^$""#,
                    r#""\\d""#,
                    r#""é""#,
                ])
                .to_string(),
            "reopt" => self
                .rng
                .pick(&[r#""i""#, r#""""#, r#""g""#, r#""im""#, r#""x""#])
                .to_string(),
            "repl" => self
                .rng
                .pick(&[
                    r#""-""#,
                    r#""\\1""#,
                    r#""<\\0>""#,
                    r#""\\2\\1""#,
                    r#""\\9""#,
                ])
                .to_string(),
            "attr" => self.attr(),
            // evalInEachContext copies its results after the official
            // library has freed them when they are computed ads or lists, so
            // its expression stays on the list ads' own, scalar attributes.
            "ctxexpr" => self
                .rng
                .pick(&[
                    "Capability",
                    "Capability * 2",
                    "Capability > 1.0",
                    "isReal(Capability)",
                    "MY.Capability",
                ])
                .to_string(),
            "evalstr" => self
                .rng
                .pick(&[
                    r#""1 + 2""#,
                    r#""a""#,
                    r#""(""#,
                    r#""x * 2""#,
                    r#""TARGET.Memory""#,
                ])
                .to_string(),
            _ => self.expr(depth + 1),
        }
    }

    fn call(&mut self, depth: u32) -> String {
        let (name, kinds) = *self.rng.pick(CALLS);
        let mut args: Vec<String> = kinds.iter().map(|k| self.typed(k, depth)).collect();
        // Sometimes the wrong number of arguments (but never so that the
        // call reads the clock or a random number).
        let clocked = ["random", "absTime", "formatTime"].contains(&name);
        if !clocked && self.rng.chance(5) {
            if self.rng.chance(50) || args.is_empty() {
                args.push(self.literal());
            } else {
                args.pop();
            }
        }
        let name = if self.rng.chance(10) {
            name.to_uppercase()
        } else {
            name.to_string()
        };
        format!("{name}({})", args.join(", "))
    }

    /// A random expression of bounded depth.
    pub fn expr(&mut self, depth: u32) -> String {
        if depth >= 4 {
            return if self.rng.chance(50) {
                self.literal()
            } else {
                self.attr()
            };
        }
        match self.rng.below(20) {
            0..=2 => self.literal(),
            3..=5 => self.attr(),
            6..=9 => {
                let op = self.rng.pick(BINOPS);
                format!("{} {} {}", self.expr(depth + 1), op, self.expr(depth + 1))
            }
            10 => format!(
                "{}{}",
                self.rng.pick(&["-", "!", "~", "+", "- "]),
                self.expr(depth + 1)
            ),
            11 => format!("({})", self.expr(depth + 1)),
            12 => format!(
                "{} ? {} : {}",
                self.expr(depth + 1),
                self.expr(depth + 1),
                self.expr(depth + 1)
            ),
            13 => format!("{} ?: {}", self.expr(depth + 1), self.expr(depth + 1)),
            14..=16 => self.call(depth),
            17 => self.list(depth),
            18 => format!(
                "{}[{}]",
                self.rng.pick(&[
                    "{1, \"two\", 3.0, undefined}",
                    "L",
                    "[a = 1; B = \"x\"]",
                    "S"
                ]),
                self.rng
                    .pick(&["0", "1", "2", "-1", "4", "\"a\"", "\"b\"", "x"])
            ),
            _ => format!("{}.{}", self.ad_literal(depth), self.rng.pick(NAMES)),
        }
    }

    /// A new-syntax ad for MY or TARGET.
    pub fn scope_ad(&mut self) -> String {
        let n = 2 + self.rng.below(6);
        let mut attrs = Vec::new();
        for _ in 0..n {
            let name = self.rng.pick(NAMES);
            let value = match self.rng.below(6) {
                0 => self.rng.pick(INTS).to_string(),
                1 => self.rng.pick(STRINGS).to_string(),
                2 => self.number_list(),
                3 => self.ad_literal(2),
                _ => self.expr(2),
            };
            attrs.push(format!("{name} = {value}"));
        }
        format!("[{}]", attrs.join("; "))
    }

    /// A syntactically damaged expression (never one that reads the
    /// clock or a random number, as deleting an argument could make it).
    fn broken(&mut self) -> String {
        loop {
            let b = self.broken_once();
            let lower = b.to_lowercase();
            if !["random()", "abstime()", "formattime()"]
                .iter()
                .any(|c| lower.contains(c))
            {
                return b;
            }
        }
    }

    fn broken_once(&mut self) -> String {
        let e = self.expr(1);
        let bytes: Vec<char> = e.chars().collect();
        if bytes.is_empty() {
            return "(".into();
        }
        let i = self.rng.below(bytes.len());
        let mut out: String = bytes[..i].iter().collect();
        match self.rng.below(4) {
            0 => {}
            1 => {
                let junk: &&str = self
                    .rng
                    .pick(&["(", ")", "]", "}", "?", ":", ",", "=", "\"", "'", "@", "$"]);
                out.push_str(junk)
            }
            2 => out.push_str(" 010"),
            _ => out.push_str(" 1."),
        }
        out.extend(&bytes[i + 1..]);
        out
    }

    /// One evaluation case.
    pub fn eval_case(&mut self, id: usize) -> Json {
        let expr = if self.rng.chance(4) {
            self.broken()
        } else {
            self.expr(0)
        };
        let mut case = json!({ "id": id, "expr": expr });
        match self.rng.below(4) {
            0 => {}
            1 => case["my"] = json!(self.scope_ad()),
            _ => {
                case["my"] = json!(self.scope_ad());
                case["target"] = json!(self.scope_ad());
            }
        }
        case
    }
}

/// Ads of a `-long` capture, as separate texts.
pub fn long_ads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Jobs, machines and flavour templates for match and symmetric cases.
pub fn match_cases(
    gen: &mut Gen,
    jobs: &[String],
    machines: &[String],
    first_id: usize,
    n: usize,
) -> Vec<Json> {
    let flavours = [
        "[MyType = \"Machine\"; CloudNode = true; Cpus = 2; Memory = 4096; Disk = 20000000; OpSys = \"LINUX\"; Arch = \"X86_64\"; CondorVersion = \"$CondorVersion: 25.14.0 2026-11-22 $\"; Start = true; Requirements = START && TARGET.RequestCpus <= Cpus]",
        "[MyType = \"Machine\"; CloudNode = true; Cpus = 16; Memory = 65536; Disk = 100000000; GPUs = 1; OpSys = \"LINUX\"; Arch = \"X86_64\"; CondorVersion = \"$CondorVersion: 25.14.0 2026-11-22 $\"; Start = TARGET.WantCloud =?= true; Requirements = START]",
        "[MyType = \"Machine\"; Cpus = 1; Memory = 512; OpSys = \"WINDOWS\"; Arch = \"X86_64\"; Requirements = true]",
    ];
    let mut out = Vec::new();
    for k in 0..n {
        let id = first_id + k;
        let job = gen.rng.pick(jobs).clone();
        let machine = if gen.rng.chance(50) {
            gen.rng.pick(machines).clone()
        } else {
            gen.rng.pick(&flavours).to_string()
        };
        let job = if gen.rng.chance(30) {
            // tweak the request so some cases flip
            format!(
                "{job}\nRequestMemory = {}\nWantCloud = {}",
                gen.rng
                    .pick(&["1", "128", "2048", "100000", "MemoryUsage * 2", "undefined"]),
                gen.rng.pick(&["true", "false", "undefined"])
            )
        } else {
            job
        };
        let op = if gen.rng.chance(50) {
            "match"
        } else {
            "symmetric"
        };
        let (my, target) = if op == "match" && gen.rng.chance(50) {
            (machine, job)
        } else {
            (job, machine)
        };
        out.push(json!({ "id": id, "op": op, "my": my, "target": target, "expr": "" }));
        // And an attribute of one evaluated against the other.
        let expr = gen.rng.pick(&[
            "MY.Requirements",
            "TARGET.Requirements",
            "TARGET.Memory >= RequestMemory",
            "Rank",
            "TARGET.Cpus",
            "versionGE(split(TARGET.CondorVersion)[1], \"25.12.0\")",
            "RequestMemory",
            "TARGET.CloudNode =?= true",
        ]);
        out.push(json!({ "id": format!("{id}e"), "expr": expr, "my": out[out.len() - 1]["my"].clone(), "target": out[out.len() - 1]["target"].clone() }));
    }
    out
}

/// Cases at libclassad's limits: parser depth (500), evaluation depth
/// (400), long reference chains, cycles, and deep literals.
pub fn bounds_cases() -> Vec<Json> {
    let mut cases = Vec::new();
    let mut add = |expr: String, my: Option<String>| {
        let id = format!("bounds{}", cases.len());
        let mut c = json!({ "id": id, "expr": expr });
        if let Some(my) = my {
            c["my"] = json!(my);
        }
        cases.push(c);
    };
    for k in (150..=175).chain([300, 1000]) {
        add(format!("{}1{}", "(".repeat(k), ")".repeat(k)), None);
        add(format!("{}1{}", "{".repeat(k), "}".repeat(k)), None);
        add(format!("{}1{}", "[a=".repeat(k), "]".repeat(k)), None);
        add(format!("{}x{}", "f(".repeat(k), ")".repeat(k)), None);
    }
    for k in (490..=502).chain([1000]) {
        add(format!("{}true", "!".repeat(k)), None);
        add(format!("{}1", "- ".repeat(k)), None);
        add(format!("x{}", " ?: x".repeat(k)), None);
    }
    for k in (390..=410).step_by(2).chain([1000, 5000]) {
        add(vec!["1"; k].join(" + "), None);
        add(format!("{}1{}", "(1 + ".repeat(k), ")".repeat(k)), None);
        add(format!("{}1", "x ?: ".repeat(k)), None);
    }
    for k in (190..=210).step_by(2).chain([400, 1000]) {
        let attrs: Vec<String> = (0..k).map(|i| format!("a{i} = a{} + 1", i + 1)).collect();
        let ad = format!("[{}; a{k} = 0]", attrs.join("; "));
        add("a0".into(), Some(ad.clone()));
        add("MY.a0 + TARGET.a0".into(), Some(ad));
        let refs: Vec<String> = (0..k).map(|i| format!("b{i} = b{}", i + 1)).collect();
        add(
            "b0".into(),
            Some(format!("[{}; b{k} = 7]", refs.join("; "))),
        );
    }
    add("a".into(), Some("[a = b + 1; b = a + 1]".into()));
    add("a + b".into(), Some("[a = b; b = c; c = a]".into()));
    add("size(l)".into(), Some("[l = {l, l, l}]".into()));
    add("member(1, l)".into(), Some("[l = {l, 1}]".into()));
    add("x.y.z".into(), Some("[x = [y = [z = x.y.z]]]".into()));
    add("s".into(), Some("[s = strcat(s, \"a\")]".into()));
    add("e".into(), Some("[e = eval(\"e\")]".into()));
    cases
}
