//! A small VCD reader that counts each net's transitions and high time (for switching activity).
//!
//! Only what Icarus writes for `$dumpvars` is needed: `$scope`/`$var` declarations (scalars and
//! `[msb:lsb]` vectors, several names may share one identifier code), `#time` stamps, scalar
//! (`0!`) and vector (`b0101 !`) changes. Changes within one time step are merged, so zero-delay
//! delta glitches are not transitions; changes from or to `x`/`z` are not counted.

use std::collections::{BTreeMap, HashMap};

/// Transitions and high time of one net bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCount {
    /// 0->1 and 1->0 transitions.
    pub toggles: u64,
    /// Time units spent at 1.
    pub high_time: u64,
}

/// Counts of every dumped net bit, by name (`name` or `name[i]`, scope prefixes dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Per net bit.
    pub nets: BTreeMap<String, NetCount>,
    /// Last time stamp of the dump.
    pub end_time: u64,
}

/// One identifier code: its bit names (LSB first) and per-bit state.
struct Signal {
    names: Vec<Vec<String>>,
    value: Vec<u8>,
    committed: Vec<u8>,
    since: Vec<u64>,
    counts: Vec<NetCount>,
}

const X: u8 = 2;

/// Parses `text` and counts transitions per net bit.
pub fn toggle_counts(text: &str) -> Result<Counts, String> {
    let mut signals: Vec<Signal> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut tokens = text.split_ascii_whitespace().peekable();
    let mut now = 0u64;
    let mut dirty: Vec<usize> = Vec::new();
    let mut in_defs = true;
    while let Some(tok) = tokens.next() {
        if in_defs {
            match tok {
                "$var" => {
                    let decl: Vec<&str> = tokens.by_ref().take_while(|t| *t != "$end").collect();
                    if decl.len() < 4 {
                        return Err(format!("short $var declaration `{}`", decl.join(" ")));
                    }
                    let width: usize = decl[1]
                        .parse()
                        .map_err(|e| format!("$var width `{}`: {e}", decl[1]))?;
                    let (code, name) = (decl[2], decl[3].trim_start_matches('\\'));
                    let range = decl.get(4).copied().unwrap_or("");
                    let bits = bit_names(name, width, range)?;
                    let idx = *ids.entry(code.to_string()).or_insert_with(|| {
                        signals.push(Signal {
                            names: vec![Vec::new(); width],
                            value: vec![X; width],
                            committed: vec![X; width],
                            since: vec![0; width],
                            counts: vec![NetCount::default(); width],
                        });
                        signals.len() - 1
                    });
                    let s = &mut signals[idx];
                    if s.names.len() != width {
                        return Err(format!("identifier `{code}` declared with two widths"));
                    }
                    for (i, n) in bits.into_iter().enumerate() {
                        s.names[i].push(n);
                    }
                }
                "$enddefinitions" => in_defs = false,
                _ => {}
            }
            continue;
        }
        if let Some(t) = tok.strip_prefix('#') {
            let t: u64 = t.parse().map_err(|e| format!("time `{tok}`: {e}"))?;
            commit(&mut signals, &mut dirty, now);
            now = t;
            continue;
        }
        if tok.starts_with('$') {
            // $dumpvars / $end and similar keywords around the initial values.
            continue;
        }
        let (bits, code) = match tok.as_bytes()[0] {
            b'b' | b'B' => {
                let code = tokens
                    .next()
                    .ok_or_else(|| format!("vector change `{tok}` without identifier"))?;
                (&tok[1..], code)
            }
            b'r' | b'R' => {
                tokens.next();
                continue;
            }
            _ => (&tok[..1], &tok[1..]),
        };
        let Some(&idx) = ids.get(code) else {
            return Err(format!("change of undeclared identifier `{code}`"));
        };
        let s = &mut signals[idx];
        let w = s.value.len();
        let digits: Vec<u8> = bits
            .bytes()
            .map(|b| match b {
                b'0' => 0,
                b'1' => 1,
                _ => X,
            })
            .collect();
        // Left-extend: with 0 for a leading 0/1, with x for a leading x/z.
        let fill = match digits.first() {
            Some(&X) => X,
            _ => 0,
        };
        for i in 0..w {
            s.value[i] = if i < digits.len() {
                digits[digits.len() - 1 - i]
            } else {
                fill
            };
        }
        dirty.push(idx);
    }
    commit(&mut signals, &mut dirty, now);
    let mut counts = Counts {
        end_time: now,
        ..Counts::default()
    };
    for s in &mut signals {
        for i in 0..s.value.len() {
            if s.committed[i] == 1 {
                s.counts[i].high_time += now - s.since[i];
            }
            for n in &s.names[i] {
                counts.nets.insert(n.clone(), s.counts[i]);
            }
        }
    }
    Ok(counts)
}

/// Applies the changes of the time step that ended at `now`.
fn commit(signals: &mut [Signal], dirty: &mut Vec<usize>, now: u64) {
    for idx in dirty.drain(..) {
        let s = &mut signals[idx];
        for i in 0..s.value.len() {
            let (old, new) = (s.committed[i], s.value[i]);
            if old == new {
                continue;
            }
            if old == 1 {
                s.counts[i].high_time += now - s.since[i];
            }
            if old != X && new != X {
                s.counts[i].toggles += 1;
            }
            s.committed[i] = new;
            s.since[i] = now;
        }
    }
}

/// Names of the bits of a declared variable, LSB first: `name` or `name[i]` over `[msb:lsb]`.
fn bit_names(name: &str, width: usize, range: &str) -> Result<Vec<String>, String> {
    // The range may also be glued to the name (`acc[31:0]`).
    let (name, range) = match name.find('[') {
        Some(p) if range.is_empty() || range == "$end" => (&name[..p], &name[p..]),
        _ => (name, range),
    };
    let inner = range.trim_start_matches('[').trim_end_matches(']');
    if inner.is_empty() || range == "$end" {
        return Ok(if width == 1 {
            vec![name.to_string()]
        } else {
            (0..width).map(|i| format!("{name}[{i}]")).collect()
        });
    }
    let parse = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|e| format!("range `{range}` of `{name}`: {e}"))
    };
    let (msb, lsb) = match inner.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(inner)?;
            (v, v)
        }
    };
    let n = (msb - lsb).unsigned_abs() as usize + 1;
    if n != width {
        return Err(format!("`{name}{range}` declared {width} bits wide"));
    }
    let step = if msb >= lsb { 1 } else { -1 };
    Ok((0..n as i64)
        .map(|i| format!("{name}[{}]", lsb + i * step))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VCD: &str = "$timescale 1ps $end
$scope module tb $end
$scope module dut $end
$var wire 1 ! clk $end
$var wire 2 \" a [1:0] $end
$var wire 1 # _001_ $end
$var wire 1 # alias $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
bx \"
0#
$end
#10
1!
b1 \"
1#
0#
1#
#20
0!
b10 \"
#30
1!
0#
#40
";

    #[test]
    fn counts_transitions_duty_and_merges_delta_glitches() {
        let c = toggle_counts(VCD).unwrap();
        assert_eq!(c.end_time, 40);
        assert_eq!(
            c.nets["clk"],
            NetCount {
                toggles: 3,
                high_time: 20
            }
        );
        // x -> 01 at 10 is not a transition; 01 -> 10 at 20 toggles both bits.
        assert_eq!(
            c.nets["a[0]"],
            NetCount {
                toggles: 1,
                high_time: 10
            }
        );
        assert_eq!(
            c.nets["a[1]"],
            NetCount {
                toggles: 1,
                high_time: 20
            }
        );
        // 0 -> 1 -> 0 -> 1 within #10 is one transition.
        assert_eq!(
            c.nets["_001_"],
            NetCount {
                toggles: 2,
                high_time: 20
            }
        );
        assert_eq!(c.nets["alias"], c.nets["_001_"]);
    }

    #[test]
    fn rejects_undeclared_identifiers() {
        assert!(toggle_counts("$enddefinitions $end\n#0\n1?\n").is_err());
    }
}
