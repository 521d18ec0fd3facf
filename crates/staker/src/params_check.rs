//! `staker params check <FILE|PRESET>`.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use staking_core::params::{GlobalParams, ParamsVersion, StakingCap};

use crate::common::{Output, ParamsSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A params file in the reference format, or a preset name: bbn-test-4 (signet) or bbn-1
    /// (mainnet phase-1).
    #[arg(value_name = "FILE|PRESET")]
    params: String,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let source = ParamsSource::parse(&args.params);
    let (params, warnings) = match source.load()? {
        Ok(ok) => ok,
        Err(error) => {
            if out.json {
                out.print(&json!({ "valid": false, "error": error.to_string() }));
            }
            eprintln!("{} is invalid: {error}", source.describe());
            return Ok(crate::exit::Kind::Refused.exit());
        }
    };
    if out.json {
        let mut value = params.to_json();
        value["valid"] = json!(true);
        value["confirmation_depth"] = json!(params.confirmation_depth());
        value["warnings"] = json!(warnings.iter().map(ToString::to_string).collect::<Vec<_>>());
        out.print(&value);
    } else {
        print!("{}", table(&source, &params));
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sat(a: staking_core::bitcoin::Amount) -> String {
    a.to_sat().to_string()
}

fn row(v: &ParamsVersion) -> [String; 10] {
    let cap = match v.cap {
        StakingCap::Amount(a) => format!("{} sat", a.to_sat()),
        StakingCap::Height(h) => format!("height {h}"),
    };
    [
        v.version.to_string(),
        v.activation_height.to_string(),
        cap,
        v.tag.iter().map(|b| format!("{b:02x}")).collect(),
        format!("{} of {}", v.covenant_quorum, v.covenant_pks.len()),
        v.unbonding_time.to_string(),
        sat(v.unbonding_fee),
        format!(
            "{}..{}",
            sat(v.min_staking_amount),
            sat(v.max_staking_amount)
        ),
        format!("{}..{}", v.min_staking_time, v.max_staking_time),
        v.confirmation_depth.to_string(),
    ]
}

fn table(source: &ParamsSource, params: &GlobalParams) -> String {
    let header = [
        "version",
        "activation",
        "cap",
        "tag",
        "covenants",
        "unbonding time",
        "unbonding fee",
        "staking amount (sat)",
        "staking time",
        "conf. depth",
    ];
    let rows: Vec<[String; 10]> = params.versions().iter().map(row).collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = format!(
        "{} is valid: {} version(s); confirmation depth {} (from version {})\n\n",
        source.describe(),
        params.versions().len(),
        params.confirmation_depth(),
        params.versions().first().map_or(0, |v| v.version),
    );
    out.push_str(&line(&header.map(String::from)));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}
