//! PCRE2, as libclassad calls it: byte-oriented patterns, its option
//! letters, and its substitution loop (`regexp_helper`).
//!
//! The `regex` crate differs from PCRE in syntax and semantics, so the real
//! library (vendored by `pcre2-sys`) is used through this small wrapper.

use pcre2_sys as sys;

pub const CASELESS: u32 = sys::PCRE2_CASELESS;
pub const MULTILINE: u32 = sys::PCRE2_MULTILINE;
pub const DOTALL: u32 = sys::PCRE2_DOTALL;
pub const EXTENDED: u32 = sys::PCRE2_EXTENDED;
/// The whole subject must match (Marathon's LIKE, as Java's `matches`).
pub const WHOLE: u32 = sys::PCRE2_ANCHORED | sys::PCRE2_ENDANCHORED;

/// A compiled pattern.
pub struct Pattern {
    code: *mut sys::pcre2_code_8,
}

/// The outcome of one `pcre2_match` call.
pub struct Match {
    /// pcre2_match's return: number of pairs set, or a negative error.
    pub status: i32,
    /// Offsets of the whole match and each group; `None` for unset groups.
    pub groups: Vec<Option<(usize, usize)>>,
}

impl Pattern {
    /// Compiles `pattern` (up to its first NUL, as C strings are read).
    pub fn new(pattern: &[u8], options: u32) -> Option<Pattern> {
        let end = pattern
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(pattern.len());
        let mut err: libc::c_int = 0;
        let mut off: usize = 0;
        // SAFETY: the pointer and length describe a live slice; PCRE2 copies
        // what it needs and reports failure through a null result.
        let code = unsafe {
            sys::pcre2_compile_8(
                pattern.as_ptr(),
                end,
                options,
                &mut err,
                &mut off,
                std::ptr::null_mut(),
            )
        };
        (!code.is_null()).then_some(Pattern { code })
    }

    /// One match attempt starting at byte `start` with match `options`.
    pub fn match_at(&self, subject: &[u8], start: usize, options: u32) -> Match {
        // SAFETY: `code` is a valid compiled pattern owned by self; the match
        // data is created for it, read only through the ovector count PCRE2
        // reports, and freed before returning.
        unsafe {
            let md = sys::pcre2_match_data_create_from_pattern_8(self.code, std::ptr::null_mut());
            if md.is_null() {
                return Match {
                    status: -48, // PCRE2_ERROR_NOMEMORY
                    groups: Vec::new(),
                };
            }
            let status = sys::pcre2_match_8(
                self.code,
                subject.as_ptr(),
                subject.len(),
                start,
                options,
                md,
                std::ptr::null_mut(),
            );
            let mut groups = Vec::new();
            if status > 0 {
                let ov = sys::pcre2_get_ovector_pointer_8(md);
                let count = sys::pcre2_get_ovector_count_8(md) as usize;
                for i in 0..count.min(status as usize) {
                    let (s, e) = (*ov.add(2 * i), *ov.add(2 * i + 1));
                    groups.push((s != usize::MAX).then_some((s, e)));
                }
            }
            sys::pcre2_match_data_free_8(md);
            Match { status, groups }
        }
    }

    pub fn is_match(&self, subject: &[u8]) -> bool {
        self.match_at(subject, 0, 0).status > 0
    }

    /// `pcre2_match(..., PCRE2_NOTEMPTY)` found something.
    pub fn is_match_notempty(&self, subject: &[u8]) -> bool {
        self.match_at(subject, 0, sys::PCRE2_NOTEMPTY).status > 0
    }
}

impl Drop for Pattern {
    fn drop(&mut self) {
        // SAFETY: the code was returned by pcre2_compile and is freed once.
        unsafe { sys::pcre2_code_free_8(self.code) }
    }
}

/// Compile options from libclassad's option letters (`i m s x`).
pub fn classad_options(opts: &[u8]) -> u32 {
    let mut o = 0;
    if opts.contains(&b'i') {
        o |= CASELESS;
    }
    if opts.contains(&b'm') {
        o |= MULTILINE;
    }
    if opts.contains(&b's') {
        o |= DOTALL;
    }
    if opts.contains(&b'x') {
        o |= EXTENDED;
    }
    o
}

/// The result of `regexp_helper`.
pub enum Outcome {
    Matched(bool),
    Replaced(Vec<u8>),
    Error,
}

/// libclassad's `regexp_helper`: match, or substitute `replace` (with
/// `\0`..`\9` group references). Option `f` keeps the text around the
/// match, `g` substitutes every match.
pub fn regexp_helper(
    pattern: &[u8],
    target: &[u8],
    replace: Option<&[u8]>,
    options: Option<&[u8]>,
) -> Outcome {
    let opts = options.unwrap_or(b"");
    let full_target = replace.is_some() && opts.contains(&b'f');
    let find_all = replace.is_some() && opts.contains(&b'g');
    let Some(re) = Pattern::new(pattern, classad_options(opts)) else {
        return Outcome::Error;
    };
    // C strings: the target ends at its first NUL.
    let target = &target[..target.iter().position(|&b| b == 0).unwrap_or(target.len())];
    let mut output = Vec::new();
    let mut idx = 0usize;
    let mut empty_match = false;
    let mut status;
    loop {
        let extra = if empty_match {
            sys::PCRE2_NOTEMPTY_ATSTART | sys::PCRE2_ANCHORED
        } else {
            0
        };
        let m = re.match_at(target, idx, extra);
        status = m.status;
        if empty_match && status == sys::PCRE2_ERROR_NOMATCH {
            if let Some(&c) = target.get(idx) {
                output.push(c);
            }
            idx += 1;
            empty_match = false;
            status = 0;
            if find_all {
                continue;
            }
            break;
        }
        if status >= 0 {
            if let Some(rep) = replace {
                let (m0, m1) = m.groups.first().copied().flatten().unwrap_or((idx, idx));
                if full_target {
                    output.extend_from_slice(&target[idx.min(m0)..m0]);
                }
                let ngroups = status as usize;
                let mut i = 0;
                while i < rep.len() {
                    let c = rep[i];
                    if c == b'\\' && i + 1 < rep.len() && rep[i + 1].is_ascii_digit() {
                        let g = usize::from(rep[i + 1] - b'0');
                        i += 1;
                        if g >= ngroups {
                            return Outcome::Error;
                        }
                        if let Some(Some((s, e))) = m.groups.get(g) {
                            output.extend_from_slice(&target[*s..*e]);
                        }
                    } else {
                        output.push(c);
                    }
                    i += 1;
                }
                idx = m1;
                if m0 == m1 {
                    empty_match = true;
                }
            }
        }
        if !(status >= 0 && find_all) {
            break;
        }
    }
    if status < 0 && status != sys::PCRE2_ERROR_NOMATCH {
        return Outcome::Error;
    }
    match replace {
        None => Outcome::Matched(status >= 0),
        Some(_) => {
            if full_target {
                output.extend_from_slice(&target[idx.min(target.len())..]);
            }
            Outcome::Replaced(output)
        }
    }
}
