//! Generates a large world and request file for the scale figures:
//!
//! ```text
//! cargo run --release --example generate -- [LOCATIONS] [INSTANCES] [REQUESTS] [DIR]
//! cargo run --release --example generate -- 100000 10 1000000 /tmp/scale
//! ```
//!
//! writes `DIR/world.json` (LOCATIONS locations of INSTANCES instances over
//! the three channels) and `DIR/requests.jsonl` (REQUESTS requests mixing
//! overrides, temporary switches, tags, assigned users and plain bodies).
//! Deterministic: the same arguments give the same files.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

const CHANNELS: [&str; 3] = ["whatsapp", "imessage", "sms"];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (locations, instances, requests) = (arg(0, 100_000), arg(1, 10), arg(2, 1_000_000));
    let dir = PathBuf::from(args.get(3).cloned().unwrap_or_else(|| "target/scale".into()));
    std::fs::create_dir_all(&dir)?;

    let mut world = BufWriter::new(File::create(dir.join("world.json"))?);
    write!(world, "{{\"locations\":[")?;
    for l in 0..locations {
        if l > 0 {
            write!(world, ",")?;
        }
        write!(world, "\n{{\"id\":\"loc_{l}\",\"instances\":[")?;
        for i in 0..instances {
            let channel = CHANNELS[i % 3];
            let index = i / 3 + 1;
            let sep = if i > 0 { "," } else { "" };
            let connected = (l + i) % 7 != 0;
            let default = i / 3 == 1;
            write!(
                world,
                "{sep}{{\"id\":\"l{l}-i{i}\",\"channel\":\"{channel}\",\"index\":{index},\"phone\":\"+1 555 {l:06}{i:02}\",\
                 \"connected\":{connected},\"default\":{default},\"users\":[\"u{}\"]}}",
                (l + i) % 13
            )?;
        }
        write!(world, "]}}")?;
    }
    writeln!(world, "\n]}}")?;
    world.flush()?;

    let mut out = BufWriter::new(File::create(dir.join("requests.jsonl"))?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..requests {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let l = (x % locations.max(1) as u64) as usize;
        let channel = CHANNELS[n % 3];
        let body = match n % 5 {
            0 => "Your order has shipped { WA#1 } and will arrive on Thursday.".to_owned(),
            1 => "Quick update from the support line {TEMP-IM#2}".to_owned(),
            _ => {
                "Hello, this is a reminder about your appointment tomorrow at 10:00. Reply STOP to opt out.".to_owned()
            }
        };
        let tag = format!("{}: +1 555 {l:06}{:02}", &channel[..2], (n % instances.max(1)));
        writeln!(
            out,
            "{{\"location\":\"loc_{l}\",\"channel\":\"{channel}\",\"body\":{},\"contact\":{{\"id\":\"c{n}\",\
             \"tags\":[\"vip\",\"{tag}\",\"newsletter\"],\"assigned_user\":\"u{}\"}}}}",
            serde_json::to_string(&body).unwrap(),
            n % 13
        )?;
    }
    out.flush()?;
    eprintln!("wrote {} and {}", dir.join("world.json").display(), dir.join("requests.jsonl").display());
    Ok(())
}
