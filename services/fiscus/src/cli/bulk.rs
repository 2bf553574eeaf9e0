//! `fiscus import` and `fiscus export`: bulk files through a member's API.

use super::{Conn, ok, print};
use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_exchange_adapter::bulk::{Format, ImportRow};
use fiscus_exchange_adapter::import_file;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ImportCmd {
    /// A CSV file (header row), an Excel workbook (.xlsx) or a JSON array of
    /// rows; see docs/bulk-import.md.
    #[arg(required_unless_present = "template")]
    file: Option<PathBuf>,
    /// The workbook's sheet to read (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Write the import template to this file instead (.xlsx: a workbook with
    /// instructions and examples; .csv: the header line) and exit.
    #[arg(long, conflicts_with = "file", value_name = "FILE")]
    template: Option<PathBuf>,
    /// Rows per request after validation (each request reports progress).
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Validate only.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Reads the file with the adapter's own reader (`import_file`: encodings,
/// Chinese headers, 元), so the CLI and the server read a file alike.
/// Returns each row with its row number as Excel shows it, and the bad cells.
fn read_rows(path: &std::path::Path, sheet: Option<&str>) -> Result<import_file::Parsed> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let format = if import_file::looks_like_xlsx(&bytes) {
        Format::Xlsx
    } else if is_json {
        Format::Json
    } else {
        Format::Csv
    };
    import_file::parse_sheet(&bytes, format, import_file::Encoding::Auto, sheet)
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.code, e.message))
}

/// Writes the import template (the adapter's own, as `GET /v1/imports/template` serves it).
fn write_template(path: &std::path::Path) -> Result<()> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("xlsx") => Format::Xlsx,
        Some("csv") => Format::Csv,
        _ => bail!("--template {}: name a .xlsx or a .csv file", path.display()),
    };
    let bytes = import_file::template(format).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "import: template written to {} ({} bytes); fill in the first sheet and import it with: fiscus import {}",
        path.display(),
        bytes.len(),
        path.display()
    );
    Ok(())
}

/// A refusal (the server's 422 body, or the same shape for bad cells found
/// locally): `--json` prints it as is; otherwise its detail, the refused rows
/// as a table, and the problems of the file as a whole.
fn print_refusal(json: bool, v: &Value) {
    if json {
        println!("{v}");
        return;
    }
    println!(
        "导入被拒绝 / import refused: {}",
        v["detail"].as_str().unwrap_or("")
    );
    print_row_errors(v["errors"].as_array().map_or(&[][..], Vec::as_slice));
    for f in v["file_errors"].as_array().map_or(&[][..], Vec::as_slice) {
        println!(
            "  {} {} (rows {})",
            f["code"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or(""),
            f["rows"]
        );
    }
}

/// The refused rows as a table: row (as Excel numbers it), external id,
/// column, value, message.
fn print_row_errors(errors: &[Value]) {
    println!(
        "{:>6}  {:<20} {:<14} {:<16} message",
        "row", "external_id", "column", "value"
    );
    for e in errors {
        println!(
            "{:>6}  {:<20} {:<14} {:<16} {}",
            e["row"].as_u64().unwrap_or(0),
            e["external_id"].as_str().unwrap_or(""),
            e["column"].as_str().unwrap_or(""),
            e["value"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
}

pub(crate) async fn import(cmd: ImportCmd) -> Result<bool> {
    if let Some(t) = &cmd.template {
        write_template(t)?;
        return Ok(true);
    }
    let Some(file) = &cmd.file else {
        bail!("import what? name a file, or --template FILE");
    };
    let import_file::Parsed {
        rows: numbered,
        errors: bad,
    } = read_rows(file, cmd.sheet.as_deref())?;
    if !bad.is_empty() {
        let v = json!({
            "code": fiscus_common::codes::import::INVALID_ROWS,
            "detail": format!(
                "文件中有 {n} 处错误，未提交任何一行。{n} bad cells in the file; nothing was submitted",
                n = bad.len()
            ),
            "errors": bad,
        });
        print_refusal(cmd.conn.json, &v);
        return Ok(false);
    }
    // The server numbers the rows of each request from 1; these map them back.
    let file_rows: Vec<usize> = numbered.iter().map(|(n, _)| *n).collect();
    let rows: Vec<ImportRow> = numbered.into_iter().map(|(_, r)| r).collect();
    let renumber = |v: &mut Value, offset: usize| {
        // Row `n` of a request that starts at the file's `offset`-th row.
        let to_file_row = |n: &mut Value| {
            if let Some(r) = n.as_u64() {
                let at = offset + r as usize;
                *n = json!(file_rows.get(at.wrapping_sub(1)).copied().unwrap_or(at));
            }
        };
        for list in ["results", "errors"] {
            for item in v[list].as_array_mut().into_iter().flatten() {
                to_file_row(&mut item["row"]);
            }
        }
        for item in v["file_errors"].as_array_mut().into_iter().flatten() {
            for n in item["rows"].as_array_mut().into_iter().flatten() {
                to_file_row(n);
            }
        }
    };
    let target = cmd.conn.target()?;
    let api_key = cmd.conn.key()?.to_owned();
    let post = |rows: &[ImportRow], dry: bool| {
        let body = serde_json::to_string(rows);
        let key = api_key.clone();
        let target = target.clone();
        async move {
            target
                .request(
                    "POST",
                    &format!("/v1/imports?format=json&dry_run={dry}"),
                    &key,
                    Some(&body?),
                    &[],
                )
                .await
        }
    };
    // The whole file is validated first: one bad row and nothing is submitted.
    eprintln!("import: validating {} rows…", rows.len());
    let (status, raw) = post(&rows, true).await?;
    let mut v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    renumber(&mut v, 0);
    if status == 422 {
        print_refusal(cmd.conn.json, &v);
        return Ok(false);
    }
    let v = ok(status, v)?;
    if cmd.dry_run {
        print(cmd.conn.json, &v, |v| {
            println!(
                "{} rows valid ({} already imported); nothing submitted (--dry-run)",
                v["rows"], v["already_imported"]
            );
        });
        return Ok(true);
    }
    let (mut submitted, mut already, mut results) = (0u64, 0u64, Vec::new());
    let total = rows.len();
    for (i, chunk) in rows.chunks(cmd.chunk.max(1)).enumerate() {
        let offset = i * cmd.chunk.max(1);
        let (status, raw) = post(chunk, false).await?;
        let mut v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        // The server numbers each chunk's rows from 1; report them as file rows.
        renumber(&mut v, offset);
        let v = ok(status, v).with_context(|| {
            format!(
                "chunk from file row {} (rows before it were submitted; re-running the file skips them)",
                file_rows.get(offset).copied().unwrap_or(offset + 1)
            )
        })?;
        submitted += v["submitted"].as_u64().unwrap_or(0);
        already += v["already_imported"].as_u64().unwrap_or(0);
        results.extend(v["results"].as_array().cloned().unwrap_or_default());
        let done = (i * cmd.chunk.max(1) + chunk.len()).min(total);
        eprintln!(
            "import: [{:<30}] {done}/{total} rows ({submitted} submitted, {already} already imported)",
            "#".repeat(done * 30 / total.max(1))
        );
    }
    let out = json!({"rows": total, "submitted": submitted, "already_imported": already, "results": results});
    print(cmd.conn.json, &out, |_| {
        println!(
            "导入完成 / import done: {total} rows, {submitted} submitted, {already} already imported"
        );
    });
    Ok(true)
}

#[derive(Debug, Args)]
pub(crate) struct ExportCmd {
    /// `accounts`, `allocations` (with deadline status) or `disbursements`.
    what: String,
    /// `csv`, `json` or `xlsx` (an Excel workbook; needs --out).
    #[arg(long, default_value = "csv")]
    format: String,
    /// The header row's language, `zh` or `en` (default: zh in a workbook,
    /// en in a CSV).
    #[arg(long)]
    headers: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    conn: Conn,
}

pub(crate) async fn export(cmd: ExportCmd) -> Result<()> {
    if !["accounts", "allocations", "disbursements"].contains(&cmd.what.as_str()) {
        bail!(
            "export what? accounts, allocations or disbursements (not {:?})",
            cmd.what
        );
    }
    if !["csv", "json", "xlsx"].contains(&cmd.format.as_str()) {
        bail!("--format is csv, json or xlsx (not {:?})", cmd.format);
    }
    if cmd.format == "xlsx" && cmd.out.is_none() {
        bail!("a workbook is written to a file: add --out FILE.xlsx");
    }
    let mut path = format!("/v1/exports/{}?format={}", cmd.what, cmd.format);
    if let Some(h) = &cmd.headers {
        if !["zh", "en"].contains(&h.as_str()) {
            bail!("--headers is zh or en (not {h:?})");
        }
        path.push_str(&format!("&headers={h}"));
    }
    let (status, raw) = cmd
        .conn
        .target()?
        .request("GET", &path, cmd.conn.key()?, None, &[])
        .await?;
    if status != 200 {
        ok(status, serde_json::from_slice(&raw).unwrap_or(Value::Null))?;
    }
    match &cmd.out {
        Some(p) => {
            std::fs::write(p, &raw).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("export: {} bytes written to {}", raw.len(), p.display());
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&raw)?;
        }
    }
    Ok(())
}
