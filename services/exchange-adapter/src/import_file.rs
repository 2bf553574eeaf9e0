//! Reading an import file the way finance offices save them: CSV in UTF-8
//! (with or without a BOM) or GB18030/GBK (what Excel writes on Chinese
//! Windows), an Excel workbook (`.xlsx`, its first or a named sheet; cells
//! read as their values, so a code typed as a number loses its leading
//! zeros: the template formats every column as text), or a JSON array; column headers in English or Chinese; amounts
//! in fen (`amount_fen`) or in 元 with at most two decimals (`amount_yuan`,
//! `1,234.56`, `¥1234.5`), never through a float. Every bad cell of every
//! row is reported in one pass, with the row number Excel shows (the header
//! is row 1) and the column's name as the file spells it; rows with nothing
//! in them (Excel leaves `,,,,` lines) are skipped.
//!
//! The column names and their Chinese equivalents are documented in
//! `docs/bulk-import.md`; [`COLUMNS`] is the one list.

use crate::error::err;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One row of an import file. In CSV the same fields are columns (see the docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    /// The row's id in the sending system; a re-run never submits it twice.
    pub external_id: String,
    /// `allocate` or `disburse`.
    pub op: String,
    /// The paying org (it must be the API client's org).
    pub org_code: String,
    pub program_id: String,
    /// The amount in fen (分): give this or `amount_yuan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    /// The amount in 元 as text with at most two decimals (`1234.56`,
    /// `1,234.56`, `¥1234`), parsed exactly: give this or `amount_fen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_yuan: Option<String>,
    /// Allocations: the receiving org.
    #[serde(default)]
    pub to_org_code: String,
    /// Allocations: the document number, e.g. 冀财预〔2026〕7号.
    #[serde(default)]
    pub document: String,
    /// Disbursements: the recipient's unified social credit code, or the hex
    /// SHA-256 of a salted personal id, and a name.
    #[serde(default)]
    pub recipient_uscc: String,
    #[serde(default)]
    pub recipient_id_hash: String,
    /// Disbursements to a person: the resident id number, checked and hashed
    /// with the consortium's salt by the adapter (never stored).
    #[serde(default)]
    pub recipient_id_number: String,
    #[serde(default)]
    pub recipient_name: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub economic_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Csv,
    Json,
    /// An Excel workbook (`.xlsx`).
    Xlsx,
}

/// Why one row (or one cell of it) is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// The row number as Excel shows it (the header is row 1, the first
    /// data row is row 2); in a JSON file, the row's place in the array
    /// from 1.
    pub row: usize,
    pub external_id: String,
    /// The column, as the file names it, when one cell is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The cell's value, when one cell is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub message: String,
}

/// Rows one import takes; one more is read to refuse a longer file.
pub const MAX_ROWS: usize = 100_000;

/// Which text encoding a CSV file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 if the file is valid UTF-8 (a BOM is dropped), else GB18030.
    #[default]
    Auto,
    #[serde(alias = "utf8")]
    #[serde(rename = "utf-8")]
    Utf8,
    /// GB18030, which includes GBK and GB2312.
    #[serde(alias = "gbk", alias = "gb2312")]
    Gb18030,
}

/// The import fields, each with the Chinese headers accepted for it.
pub const COLUMNS: &[(&str, &[&str])] = &[
    ("external_id", &["外部编号", "业务编号", "单据编号"]),
    ("op", &["业务类型", "操作"]),
    ("org_code", &["付款单位代码", "单位代码"]),
    ("program_id", &["项目编号", "项目代码"]),
    ("amount_fen", &["金额（分）", "金额(分)"]),
    ("amount_yuan", &["金额（元）", "金额(元)", "金额"]),
    ("to_org_code", &["收款单位代码", "下级单位代码"]),
    ("document", &["文号", "指标文号"]),
    ("recipient_uscc", &["统一社会信用代码"]),
    ("recipient_id_number", &["身份证号码", "身份证号"]),
    ("recipient_id_hash", &["身份证号哈希"]),
    ("recipient_name", &["收款人名称", "收款人", "收款单位名称"]),
    ("purpose", &["用途", "支付用途"]),
    (
        "economic_code",
        &["经济分类", "经济分类科目", "经济分类代码"],
    ),
];

/// The columns of the import template, in order: field, Chinese header
/// (`*`: every row needs it), what an allocation (下达) and a disbursement
/// (支付) need, and a note, in Chinese then English.
pub const TEMPLATE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "external_id",
        "外部编号*",
        "必填",
        "必填",
        "本单位业务系统中的编号，1–64 个英文字母、数字或符号，不能重复 / your own id: 1–64 letters, digits or symbols, unique",
    ),
    (
        "op",
        "业务类型*",
        "下达",
        "支付",
        "下达 或 支付 / allocate or disburse",
    ),
    (
        "org_code",
        "付款单位代码*",
        "必填",
        "必填",
        "本单位 6 位代码 / your org's 6-digit code",
    ),
    (
        "program_id",
        "项目编号*",
        "必填",
        "必填",
        "链上已有的项目 / a program on the chain",
    ),
    (
        "amount_yuan",
        "金额（元）*",
        "必填",
        "必填",
        "以元为单位，最多两位小数 / in 元, at most two decimals",
    ),
    (
        "to_org_code",
        "收款单位代码",
        "必填",
        "",
        "接收指标的下级单位代码 / the receiving org",
    ),
    (
        "document",
        "文号",
        "必填",
        "",
        "指标文号，如 冀财预〔2026〕7号 / the allocation document",
    ),
    (
        "recipient_uscc",
        "统一社会信用代码",
        "",
        "三选一",
        "收款单位的 18 位代码（文本格式）/ the recipient unit's 18-character code (as text)",
    ),
    (
        "recipient_id_number",
        "身份证号码",
        "",
        "三选一",
        "收款人是个人时填写（文本格式），只做哈希，不上链 / a person's id number (as text): hashed, never stored",
    ),
    (
        "recipient_name",
        "收款人名称",
        "",
        "必填",
        "收款单位或个人名称 / the recipient's name",
    ),
    (
        "purpose",
        "用途",
        "",
        "必填",
        "支付用途 / what the payment is for",
    ),
    (
        "economic_code",
        "经济分类",
        "",
        "必填",
        "3–7 位经济分类科目代码，如 30201 / 3 to 7 digits",
    ),
];

/// The import template as a workbook (a sheet to fill in, with every column
/// formatted as text so that Excel keeps long id numbers whole; a sheet that
/// explains the columns; a sheet of example rows) or as a CSV header line
/// (UTF-8 with a byte-order mark, CRLF).
pub fn template(format: Format) -> Result<Vec<u8>, String> {
    let headers: Vec<&str> = TEMPLATE.iter().map(|c| c.1).collect();
    match format {
        Format::Csv => Ok(format!("\u{feff}{}\r\n", headers.join(",")).into_bytes()),
        Format::Json => Err("the template is csv or xlsx".into()),
        Format::Xlsx => template_xlsx(&headers).map_err(|e| e.to_string()),
    }
}

fn template_xlsx(headers: &[&str]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let mut book = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let text = CellFormat::new().set_num_format("@");
    let fill = book.add_worksheet();
    fill.set_name("导入 import")?;
    for (c, h) in headers.iter().enumerate() {
        let c = c as u16;
        fill.write_string_with_format(0, c, *h, &bold)?;
        // Text, so that an id number or a code keeps every digit and its leading zeros.
        fill.set_column_format(c, &text)?;
        fill.set_column_width(c, 18)?;
    }
    fill.set_freeze_panes(1, 0)?;
    let help = book.add_worksheet();
    help.set_name("说明 instructions")?;
    for (c, h) in [
        "列名 column",
        "英文列名 English name",
        "下达 allocate",
        "支付 disburse",
        "说明 notes",
    ]
    .iter()
    .enumerate()
    {
        help.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, (field, zh, alloc, pay, note)) in TEMPLATE.iter().enumerate() {
        let r = r as u32 + 1;
        help.write_string(r, 0, *zh)?;
        help.write_string(r, 1, *field)?;
        help.write_string(r, 2, *alloc)?;
        help.write_string(r, 3, *pay)?;
        help.write_string(r, 4, *note)?;
    }
    help.set_column_width(0, 18)?;
    help.set_column_width(1, 22)?;
    help.set_column_width(4, 90)?;
    let r = TEMPLATE.len() as u32 + 2;
    help.write_string(
        r,
        0,
        "每行一笔业务；空行会被忽略；表头带 * 的列每行必填。另存为 .xlsx 或 CSV 后上传。 \
         One row per payment; empty rows are skipped; columns marked * are needed on every row.",
    )?;
    let example = book.add_worksheet();
    example.set_name("示例 example")?;
    let rows: [[&str; 12]; 2] = [
        [
            "SJZ-2026-0001",
            "下达",
            "130100",
            "edu-2026",
            "10000.00",
            "130104",
            "石财教〔2026〕9号",
            "",
            "",
            "",
            "",
            "",
        ],
        [
            "SJZ-2026-0002",
            "支付",
            "130100",
            "edu-2026",
            "200.00",
            "",
            "",
            "12130100MB0E11116J",
            "",
            "石家庄市第一中学",
            "教辅材料",
            "30201",
        ],
    ];
    for (c, h) in headers.iter().enumerate() {
        example.write_string_with_format(0, c as u16, *h, &bold)?;
        example.set_column_width(c as u16, 18)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                example.write_string((r + 1) as u32, c as u16, *v)?;
            }
        }
    }
    book.save_to_buffer()
}

/// The field a header names, if any (English names, then Chinese ones; a
/// `*` Excel templates put on required columns is ignored).
fn field_of(header: &str) -> Option<&'static str> {
    let h = header.trim().trim_end_matches('*').trim();
    COLUMNS
        .iter()
        .find_map(|(name, zh)| (h.eq_ignore_ascii_case(name) || zh.contains(&h)).then_some(*name))
}

/// The operation a cell names: English or Chinese.
fn op_of(value: &str) -> Option<&'static str> {
    match value.trim() {
        "allocate" | "下达" | "分配" => Some("allocate"),
        "disburse" | "支付" | "拨付" => Some("disburse"),
        _ => None,
    }
}

/// Parses 元 with at most two decimals into fen, exactly: `1234.56`,
/// `1,234.5`, `¥1234`, `￥0.05`. Never through a float.
pub fn yuan_to_fen(text: &str) -> Result<i64, &'static str> {
    let t = text
        .trim()
        .trim_start_matches(['¥', '￥'])
        .trim()
        .replace(',', "");
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) {
        return Err("不是以元为单位的金额（如 1234.56） / not an amount in 元 (e.g. 1234.56)");
    }
    if frac.len() > 2 {
        return Err(
            "小数超过两位：最小单位为分 / more than two decimals: 1 分 is the smallest amount",
        );
    }
    let yuan: i64 = int.parse().map_err(|_| "金额过大 / amount too large")?;
    let fen: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    yuan.checked_mul(100)
        .and_then(|f| f.checked_add(fen))
        .ok_or("金额过大 / amount too large")
}

/// fen as 元 with two decimals, e.g. 123456 → "1234.56", -5 → "-0.05": the
/// inverse of [`yuan_to_fen`], for messages and tables.
pub fn fen_to_yuan(fen: i128) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let f = fen.unsigned_abs();
    format!("{sign}{}.{:02}", f / 100, f % 100)
}

/// Decodes a CSV body to text; refuses one in neither encoding, saying which
/// it accepts.
fn decode(body: &[u8], encoding: Encoding) -> Result<String, ServiceError> {
    let refuse = |what: &str| {
        err(
            ErrorKind::InvalidArgument,
            codes::import::BAD_ENCODING,
            format!(
                "文件编码无法识别（{what}）：请另存为“CSV UTF-8”或 GB18030/GBK 编码的 CSV。 \
                 The file is not readable as {what}: save it as \"CSV UTF-8\" or as a GB18030/GBK CSV \
                 (or name its encoding with ?encoding=utf-8|gb18030)."
            ),
        )
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let utf8 = std::str::from_utf8(body).ok();
    let gb = || {
        encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(body)
            .map(|s| s.into_owned())
    };
    match encoding {
        Encoding::Utf8 => utf8.map(str::to_owned).ok_or_else(|| refuse("UTF-8")),
        Encoding::Gb18030 => gb().ok_or_else(|| refuse("GB18030")),
        Encoding::Auto => utf8
            .map(str::to_owned)
            .or_else(gb)
            .ok_or_else(|| refuse("UTF-8 或 GB18030 / UTF-8 or GB18030")),
    }
}

/// A parsed file: its rows (each with the row number to report it under)
/// and every bad cell found while reading them.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<(usize, ImportRow)>,
    pub errors: Vec<RowError>,
}

/// Reads an import file. A problem with the file as a whole (encoding,
/// headers, not CSV/JSON at all) is an error; bad cells are in
/// [`Parsed::errors`], all of them.
pub fn parse(body: &[u8], format: Format, encoding: Encoding) -> Result<Parsed, ServiceError> {
    parse_sheet(body, format, encoding, None)
}

/// [`parse`], naming the worksheet of a workbook to read (default: the first).
pub fn parse_sheet(
    body: &[u8],
    format: Format,
    encoding: Encoding,
    sheet: Option<&str>,
) -> Result<Parsed, ServiceError> {
    if looks_like_xls(body) {
        return Err(bad_file(
            "这是旧版 Excel 97-2003 工作簿（.xls），无法读取：请另存为 .xlsx 或 CSV。 \
             This is an Excel 97-2003 workbook (.xls), which is not read: save it as .xlsx or CSV."
                .into(),
        ));
    }
    match format {
        Format::Json => parse_json(body),
        Format::Csv => parse_csv(&decode(body, encoding)?),
        Format::Xlsx => parse_xlsx(body, sheet),
    }
}

/// Whether `body` looks like a workbook (a ZIP file) rather than text.
pub fn looks_like_xlsx(body: &[u8]) -> bool {
    body.starts_with(b"PK\x03\x04")
}

/// An Excel 97–2003 `.xls` file (an OLE2 compound file): not read.
fn looks_like_xls(body: &[u8]) -> bool {
    body.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

fn bad_file(message: String) -> ServiceError {
    err(ErrorKind::InvalidArgument, codes::import::BAD_FILE, message)
}

fn parse_json(body: &[u8]) -> Result<Parsed, ServiceError> {
    let rows: Vec<ImportRow> = serde_json::from_slice(body).map_err(|e| {
        bad_file(format!(
            "JSON 不是导入行的数组。The JSON is not an array of import rows: {e}"
        ))
    })?;
    let mut out = Parsed::default();
    for (i, mut row) in rows.into_iter().take(MAX_ROWS + 1).enumerate() {
        // JSON rows are numbered by their place in the array, from 1.
        let n = i + 1;
        match settle_amount(&mut row) {
            Ok(()) => out.rows.push((n, row)),
            Err((column, value, message)) => out.errors.push(RowError {
                row: n,
                external_id: row.external_id.clone(),
                column: Some(column.into()),
                value: Some(value),
                message,
            }),
        }
    }
    Ok(out)
}

/// Fills `amount_fen` from `amount_yuan` where only that was given; exactly
/// one of the two must be.
fn settle_amount(row: &mut ImportRow) -> Result<(), (&'static str, String, String)> {
    match (row.amount_fen, row.amount_yuan.as_deref().map(str::trim)) {
        (Some(_), None | Some("")) => Ok(()),
        (None, Some(y)) if !y.is_empty() => {
            let fen = yuan_to_fen(y).map_err(|m| ("amount_yuan", y.to_owned(), m.to_owned()))?;
            // One amount from here on: a row sent on (the CLI posts JSON) is not "given twice".
            row.amount_fen = Some(fen);
            row.amount_yuan = None;
            Ok(())
        }
        (Some(_), Some(y)) => Err((
            "amount_yuan",
            y.to_owned(),
            "金额只填一列（分或元） / give the amount once, in amount_fen or in amount_yuan".into(),
        )),
        (None, _) => Err((
            "amount_yuan",
            String::new(),
            "缺少金额：请填写金额（元）或金额（分） / no amount: fill amount_yuan (元) or amount_fen (分)"
                .into(),
        )),
    }
}

/// Maps a header row to the fields its columns hold; refuses unknown,
/// repeated and missing columns.
fn map_headers(headers: &[String]) -> Result<Vec<Option<&'static str>>, ServiceError> {
    let mut fields: Vec<Option<&'static str>> = Vec::with_capacity(headers.len());
    let mut unknown = Vec::new();
    for h in headers {
        let f = field_of(h);
        if f.is_none() && !h.trim().is_empty() {
            unknown.push(h.to_owned());
        }
        if f.is_some() && fields.contains(&f) {
            return Err(bad_file(format!(
                "列“{h}”重复。Column {h:?} appears twice."
            )));
        }
        fields.push(f);
    }
    if !unknown.is_empty() {
        let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
        return Err(bad_file(format!(
            "无法识别的列：{}。Unknown columns: {}. Accepted: {} (or their Chinese names, \
             docs/bulk-import.md).",
            unknown.join("、"),
            unknown.join(", "),
            names.join(", ")
        )));
    }
    for required in ["external_id", "op", "org_code", "program_id"] {
        if !fields.contains(&Some(required)) {
            return Err(bad_file(format!(
                "缺少必需的列 {required}。The required column {required} is missing."
            )));
        }
    }
    if !fields.contains(&Some("amount_fen")) && !fields.contains(&Some("amount_yuan")) {
        return Err(bad_file(
            "缺少金额列：金额（元）或金额（分）。An amount column is missing: amount_yuan (元) or amount_fen (分)."
                .into(),
        ));
    }
    Ok(fields)
}

/// A file's header row and the fields its columns hold.
struct Table {
    headers: Vec<String>,
    fields: Vec<Option<&'static str>>,
}

impl Table {
    fn new(headers: Vec<String>) -> Result<Self, ServiceError> {
        let fields = map_headers(&headers)?;
        Ok(Self { headers, fields })
    }

    /// Reads row `n` (as Excel numbers it) into `out`: the row, or every bad
    /// cell of it. `bad` holds cells already found unreadable (column
    /// index, value, message).
    fn read_row(
        &self,
        n: usize,
        values: &[String],
        mut unreadable: Vec<(usize, String, String)>,
        out: &mut Parsed,
    ) {
        let (headers, fields) = (&self.headers, &self.fields);
        let name = |i: usize| -> String {
            match (headers.get(i), fields.get(i)) {
                (Some(h), Some(Some(_))) => h.clone(),
                _ => format!("#{}", i + 1),
            }
        };
        let mut row = ImportRow::default();
        let mut bad: Vec<(String, String, String)> = Vec::new();
        let mut amount_bad = false;
        for (i, v, m) in unreadable.drain(..) {
            if matches!(fields.get(i), Some(Some("amount_fen" | "amount_yuan"))) {
                amount_bad = true;
            }
            bad.push((name(i), v, m));
        }
        for (i, value) in values.iter().enumerate() {
            let value = value.as_str();
            if bad.iter().any(|(c, _, _)| *c == name(i)) {
                continue;
            }
            let Some(Some(field)) = fields.get(i) else {
                if !value.is_empty() {
                    bad.push((
                        format!("#{}", i + 1),
                        value.to_owned(),
                        "该值超出表头的列 / a value beyond the header's columns".to_owned(),
                    ));
                }
                continue;
            };
            let header = name(i);
            let v = value.to_owned();
            match *field {
                "external_id" => row.external_id = v,
                "op" => match op_of(value) {
                    Some(op) => row.op = op.into(),
                    None if value.is_empty() => {}
                    None => bad.push((
                        header,
                        v,
                        "业务类型应为下达或支付 / op is allocate (下达) or disburse (支付)".into(),
                    )),
                },
                "org_code" => row.org_code = v,
                "program_id" => row.program_id = v,
                "amount_fen" if !value.is_empty() => match value.parse::<i64>() {
                    Ok(f) => row.amount_fen = Some(f),
                    Err(_) => {
                        amount_bad = true;
                        bad.push((
                            header,
                            v,
                            "金额（分）应为整数 / amount_fen is a whole number of 分".into(),
                        ));
                    }
                },
                "amount_yuan" if !value.is_empty() => row.amount_yuan = Some(v),
                "to_org_code" => row.to_org_code = v,
                "document" => row.document = v,
                "recipient_uscc" => row.recipient_uscc = v,
                "recipient_id_number" => row.recipient_id_number = v,
                "recipient_id_hash" => row.recipient_id_hash = v,
                "recipient_name" => row.recipient_name = v,
                "purpose" => row.purpose = v,
                "economic_code" => row.economic_code = v,
                _ => {}
            }
        }
        // An unreadable amount cell is reported once, not again as "no amount".
        if !amount_bad && let Err((column, value, message)) = settle_amount(&mut row) {
            let header = fields
                .iter()
                .position(|f| *f == Some(column))
                .and_then(|i| headers.get(i))
                .map_or(column, String::as_str);
            bad.push((header.to_owned(), value, message));
        }
        if bad.is_empty() {
            out.rows.push((n, row));
        } else {
            for (column, value, message) in bad {
                out.errors.push(RowError {
                    row: n,
                    external_id: row.external_id.clone(),
                    column: Some(column),
                    value: Some(value),
                    message,
                });
            }
        }
    }
}

fn parse_csv(text: &str) -> Result<Parsed, ServiceError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| bad_file(format!("表头无法读取。The header row cannot be read: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let table = Table::new(headers)?;
    let mut out = Parsed::default();
    let mut record = csv::StringRecord::new();
    let mut data_rows = 0;
    // Lines before byte `counted`, plus one: the line number at that byte.
    let (mut line, mut counted) = (1usize, 0usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(bad_file(format!(
                    "第 {line} 行无法读取。Row {line} cannot be read: {e}"
                )));
            }
        }
        // The row number Excel shows: the line the record starts on (the
        // header is row 1), counted from its byte offset (the csv crate's own
        // line count is one short after CRLF line ends, as Excel writes them).
        let mut at = record
            .position()
            .map_or(0, |p| p.byte() as usize)
            .min(text.len());
        // After a CRLF the record's offset is that of the LF: step past line ends.
        while text
            .as_bytes()
            .get(at)
            .is_some_and(|b| *b == b'\r' || *b == b'\n')
        {
            at += 1;
        }
        line += text.as_bytes()[counted..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        counted = at;
        let n = line;
        if record.iter().all(str::is_empty) {
            continue;
        }
        data_rows += 1;
        if data_rows > MAX_ROWS {
            // One past the limit: the caller refuses the file.
            out.rows.push((n, ImportRow::default()));
            break;
        }
        let values: Vec<String> = record.iter().map(str::to_owned).collect();
        table.read_row(n, &values, Vec::new(), &mut out);
    }
    Ok(out)
}

/// Numbers at or above this lost digits in Excel (it keeps 15 significant
/// digits): an id number typed into a cell not formatted as text.
const EXCEL_EXACT_LIMIT: f64 = 1e15;

/// One workbook cell as the text a CSV would hold, or why it cannot be read.
fn cell_text(cell: &calamine::Data) -> Result<String, String> {
    use calamine::Data;
    match cell {
        Data::Empty => Ok(String::new()),
        Data::String(s) => Ok(s.trim().to_owned()),
        Data::Int(i) => Ok(i.to_string()),
        Data::Float(f) if f.abs() >= EXCEL_EXACT_LIMIT => Err(
            "Excel 把这个长号码存成了数字，后几位已丢失：请把该列设为“文本”后重新填写 / \
             Excel stored this long number as a number and lost its last digits: format the \
             column as Text and enter it again"
                .into(),
        ),
        // Integral: no ".0". Otherwise the shortest text that reads back as
        // the same number, which is what Excel shows (1234.56, not 1234.5599…).
        Data::Float(f) if f.fract() == 0.0 => Ok(format!("{}", *f as i64)),
        Data::Float(f) => Ok(format!("{f}")),
        Data::Bool(b) => Ok(b.to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Ok(s.clone()),
        Data::DateTime(d) => Ok(d.as_f64().to_string()),
        Data::Error(e) => Err(format!(
            "单元格是错误值 {e} / the cell holds the Excel error {e}"
        )),
    }
}

/// Reads the first worksheet (or the one named) of an `.xlsx` file. The
/// header is the sheet's first row; row numbers are Excel's own.
fn parse_xlsx(body: &[u8], sheet: Option<&str>) -> Result<Parsed, ServiceError> {
    use calamine::Reader as _;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(body))
        .map_err(|e| {
        bad_file(format!(
            "不是可读取的 Excel 工作簿（.xlsx）。The file is not a readable .xlsx workbook: {e}"
        ))
    })?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(s) => names.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| {
            bad_file(format!(
                "工作簿中没有名为“{s}”的工作表（有：{}）。The workbook has no sheet {s:?} (it has: {}).",
                names.join("、"),
                names.join(", ")
            ))
        })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| bad_file("工作簿中没有工作表。The workbook has no sheet.".into()))?,
    };
    let range = book.worksheet_range(&name).map_err(|e| {
        bad_file(format!(
            "工作表“{name}”无法读取。Sheet {name:?} cannot be read: {e}"
        ))
    })?;
    let Some((first_row, first_col)) = range.start() else {
        return Ok(Parsed::default());
    };
    // Columns left of the used range are empty; keep Excel's column places.
    let pad = first_col as usize;
    let mut rows = range.rows();
    let header_cells = rows.next().unwrap_or_default();
    let headers: Vec<String> = std::iter::repeat_n(String::new(), pad)
        .chain(
            header_cells
                .iter()
                .map(|c| cell_text(c).unwrap_or_default()),
        )
        .collect();
    let table = Table::new(headers)?;
    let mut out = Parsed::default();
    let mut data_rows = 0;
    for (i, cells) in rows.enumerate() {
        // The header is Excel row first_row + 1; this row is two further on from i = 0.
        let n = first_row as usize + i + 2;
        let mut values = vec![String::new(); pad];
        let mut unreadable = Vec::new();
        for (j, c) in cells.iter().enumerate() {
            match cell_text(c) {
                Ok(t) => values.push(t),
                Err(m) => {
                    values.push(String::new());
                    unreadable.push((pad + j, format!("{c}"), m));
                }
            }
        }
        if unreadable.is_empty() && values.iter().all(String::is_empty) {
            continue;
        }
        data_rows += 1;
        if data_rows > MAX_ROWS {
            out.rows.push((n, ImportRow::default()));
            break;
        }
        table.read_row(n, &values, unreadable, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_parse_exactly_with_separators_and_currency_signs() {
        assert_eq!(yuan_to_fen("1234.56"), Ok(123_456));
        assert_eq!(yuan_to_fen("1,234.5"), Ok(123_450));
        assert_eq!(yuan_to_fen("¥1234"), Ok(123_400));
        assert_eq!(yuan_to_fen("￥0.05"), Ok(5));
        assert_eq!(yuan_to_fen(" 0.1 "), Ok(10));
        // 0.29 as a float is 0.28999…; parsed as text it is 29 fen.
        assert_eq!(yuan_to_fen("0.29"), Ok(29));
        assert!(yuan_to_fen("1.234").is_err());
        assert!(yuan_to_fen("-5").is_err());
        assert!(yuan_to_fen("1e3").is_err());
        assert!(yuan_to_fen("").is_err());
        assert!(yuan_to_fen("99999999999999999999").is_err());
    }

    #[test]
    fn fen_format_as_yuan_with_two_decimals() {
        assert_eq!(fen_to_yuan(123_456), "1234.56");
        assert_eq!(fen_to_yuan(5), "0.05");
        assert_eq!(fen_to_yuan(-250), "-2.50");
        assert_eq!(fen_to_yuan(-5), "-0.05");
        assert_eq!(yuan_to_fen(&fen_to_yuan(98_765)), Ok(98_765));
    }

    #[test]
    fn a_gb18030_csv_with_chinese_headers_reads_like_its_utf8_twin() {
        let text = "外部编号,业务类型,付款单位代码,项目编号,金额（元）,收款单位代码,文号\n\
                    r1,下达,130100,edu,\"1,234.56\",130102,石财〔2026〕1号\n";
        let (gbk, _, lossy) = encoding_rs::GB18030.encode(text);
        assert!(!lossy);
        assert!(std::str::from_utf8(&gbk).is_err(), "really not UTF-8");
        let from_gbk = parse(&gbk, Format::Csv, Encoding::Auto).unwrap();
        let from_utf8 = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        assert!(from_gbk.errors.is_empty(), "{:?}", from_gbk.errors);
        assert_eq!(from_gbk.rows, from_utf8.rows);
        let (n, row) = &from_gbk.rows[0];
        assert_eq!(*n, 2, "the first data row is Excel's row 2");
        assert_eq!(row.op, "allocate");
        assert_eq!(row.amount_fen, Some(123_456));
        assert_eq!(row.document, "石财〔2026〕1号");
    }

    #[test]
    fn a_utf8_bom_is_dropped_and_comma_only_rows_are_skipped() {
        let text = "\u{feff}external_id,op,org_code,program_id,amount_fen\n\
                    r1,allocate,130100,edu,100\n,,,,\n\n,,,,\nr2,disburse,130100,edu,5\n";
        let p = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let rows: Vec<(usize, &str)> = p
            .rows
            .iter()
            .map(|(n, r)| (*n, r.external_id.as_str()))
            .collect();
        assert_eq!(rows, vec![(2, "r1"), (6, "r2")]);
    }

    #[test]
    fn crlf_rows_are_numbered_as_excel_shows_them() {
        let text = "external_id,op,org_code,program_id,amount_fen\r\nr1,allocate,130100,edu,1\r\n,,,,\r\nr2,allocate,130100,edu,2\r\n";
        let p = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        let rows: Vec<usize> = p.rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(rows, vec![2, 4]);
    }

    #[test]
    fn every_bad_cell_is_reported_with_its_excel_row_column_and_value() {
        let text = "external_id,op,org_code,program_id,amount_fen\n\
                    r1,allocate,130100,edu,lots\n\
                    r2,pay,130100,edu,7\n\
                    r3,allocate,130100,edu,9\n\
                    r4,allocate,130100,edu,1.5\n";
        let p = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        let bad: Vec<(usize, Option<&str>, Option<&str>)> = p
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref(), e.value.as_deref()))
            .collect();
        assert_eq!(
            bad,
            vec![
                (2, Some("amount_fen"), Some("lots")),
                (3, Some("op"), Some("pay")),
                (5, Some("amount_fen"), Some("1.5")),
            ]
        );
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].0, 4);
    }

    #[test]
    fn a_file_in_neither_encoding_says_which_are_accepted_in_both_languages() {
        // Invalid as UTF-8 and as GB18030 (0x80 alone, 0xFF).
        let e = parse(b"external_id\n\x80\xff\xff\n", Format::Csv, Encoding::Auto).unwrap_err();
        assert_eq!(e.code, "import.bad_encoding");
        assert!(e.message.contains("GB18030") && e.message.contains("UTF-8"));
        assert!(e.message.contains("另存为"));
        // Named UTF-8 but GBK bytes: refused, not decoded wrongly.
        let (gbk, _, _) = encoding_rs::GB18030.encode("external_id\n测试\n");
        let e = parse(&gbk, Format::Csv, Encoding::Utf8).unwrap_err();
        assert_eq!(e.code, "import.bad_encoding");
    }

    #[test]
    fn unknown_or_missing_columns_are_refused_naming_them() {
        let e = parse(
            "external_id,op,org_code,program_id,amount_fen,备注\n".as_bytes(),
            Format::Csv,
            Encoding::Auto,
        )
        .unwrap_err();
        assert!(e.message.contains("备注"), "{}", e.message);
        let e = parse(
            "external_id,op,org_code,program_id\n".as_bytes(),
            Format::Csv,
            Encoding::Auto,
        )
        .unwrap_err();
        assert!(e.message.contains("amount_yuan"), "{}", e.message);
    }

    #[test]
    fn a_bad_amount_under_a_chinese_header_is_reported_once_under_that_header() {
        let text = "外部编号,业务类型,付款单位代码,项目编号,金额（分）\nr1,下达,130100,edu,十元\n";
        let p = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert_eq!(p.errors[0].column.as_deref(), Some("金额（分）"));
        assert_eq!(p.errors[0].value.as_deref(), Some("十元"));
    }

    #[test]
    fn an_amount_given_twice_or_not_at_all_is_a_row_error() {
        let text = "external_id,op,org_code,program_id,amount_fen,amount_yuan\n\
                    r1,allocate,130100,edu,100,1.00\n\
                    r2,allocate,130100,edu,,\n";
        let p = parse(text.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        let rows: Vec<usize> = p.errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![2, 3]);
    }

    #[test]
    fn json_rows_take_yuan_too() {
        let body = br#"[{"external_id":"a","op":"allocate","org_code":"130100","program_id":"e","amount_yuan":"12.30"},
                        {"external_id":"b","op":"allocate","org_code":"130100","program_id":"e","amount_fen":5}]"#;
        let p = parse(body, Format::Json, Encoding::Auto).unwrap();
        assert!(p.errors.is_empty());
        assert_eq!(p.rows[0].1.amount_fen, Some(1230));
        assert_eq!(p.rows[1].1.amount_fen, Some(5));
    }

    /// A workbook as a finance office fills one in: Chinese headers, text
    /// cells, amounts in 元 typed as numbers, a row left empty.
    fn workbook(rows: &[Vec<Cell>]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name("Sheet1").unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    Cell::T(t) => {
                        sheet.write_string(r, c, *t).unwrap();
                    }
                    Cell::N(n) => {
                        sheet.write_number(r, c, *n).unwrap();
                    }
                    Cell::E => {}
                }
            }
        }
        book.save_to_buffer().unwrap()
    }

    enum Cell {
        T(&'static str),
        N(f64),
        E,
    }
    use Cell::{E, N, T};

    #[test]
    fn an_xlsx_with_chinese_headers_and_yuan_numbers_reads_like_the_csv() {
        let header = vec![
            T("外部编号*"),
            T("业务类型"),
            T("付款单位代码"),
            T("项目编号"),
            T("金额（元）"),
            T("收款单位代码"),
            T("文号"),
            T("统一社会信用代码"),
            T("收款人名称"),
            T("用途"),
            T("经济分类"),
        ];
        let body = workbook(&[
            header,
            vec![
                T("SJZ-1"),
                T("下达"),
                T("130100"),
                T("edu-2026"),
                N(1234.56),
                T("130104"),
                T("石财教〔2026〕9号"),
                E,
                E,
                E,
                E,
            ],
            vec![E, E, E, E, E, E, E, E, E, E, E],
            vec![
                T("SJZ-2"),
                T("支付"),
                N(130100.0),
                T("edu-2026"),
                N(200.0),
                E,
                E,
                T("12130100MB0E11116J"),
                T("石家庄市第一中学"),
                T("教辅材料"),
                N(30201.0),
            ],
        ]);
        assert!(looks_like_xlsx(&body));
        let p = parse_sheet(&body, Format::Xlsx, Encoding::Auto, None).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        // Row numbers as Excel shows them: the empty row 3 is skipped, not renumbered.
        let numbers: Vec<usize> = p.rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, vec![2, 4]);
        let (a, d) = (&p.rows[0].1, &p.rows[1].1);
        assert_eq!((a.op.as_str(), a.amount_fen), ("allocate", Some(123_456)));
        assert_eq!(a.document, "石财教〔2026〕9号");
        assert_eq!((d.op.as_str(), d.amount_fen), ("disburse", Some(20_000)));
        // A code typed as a number reads as its digits, without ".0".
        assert_eq!(
            (d.org_code.as_str(), d.economic_code.as_str()),
            ("130100", "30201")
        );
        assert_eq!(d.recipient_name, "石家庄市第一中学");
        // The same rows from the equivalent CSV.
        let csv = "外部编号*,业务类型,付款单位代码,项目编号,金额（元）,收款单位代码,文号,统一社会信用代码,收款人名称,用途,经济分类\n\
                   SJZ-1,下达,130100,edu-2026,1234.56,130104,石财教〔2026〕9号,,,,\n\
                   ,,,,,,,,,,\n\
                   SJZ-2,支付,130100,edu-2026,200,,,12130100MB0E11116J,石家庄市第一中学,教辅材料,30201\n";
        let c = parse(csv.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        assert_eq!(c.rows, p.rows);
    }

    #[test]
    fn xlsx_cells_excel_mangled_are_reported_with_their_row_and_column() {
        let body = workbook(&[
            vec![
                T("external_id"),
                T("op"),
                T("org_code"),
                T("program_id"),
                T("金额（元）"),
                T("身份证号码"),
                T("收款人名称"),
                T("用途"),
                T("经济分类"),
            ],
            // An id number typed into a General cell: Excel keeps 15 digits.
            vec![
                T("P-1"),
                T("支付"),
                T("130102"),
                T("edu"),
                N(50.0),
                N(130_102_200_001_011_234.0),
                T("张三"),
                T("补助"),
                T("30305"),
            ],
            // 0.1 + 0.2 in a formula: not an amount of whole fen.
            vec![
                T("P-2"),
                T("支付"),
                T("130102"),
                T("edu"),
                N(0.1 + 0.2),
                T("130102200001011234"),
                T("李四"),
                T("补助"),
                T("30305"),
            ],
        ]);
        let p = parse_sheet(&body, Format::Xlsx, Encoding::Auto, None).unwrap();
        assert!(p.rows.is_empty(), "{:?}", p.rows);
        let seen: Vec<(usize, &str)> = p
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(seen, vec![(2, "身份证号码"), (3, "金额（元）")]);
        assert!(
            p.errors[0].message.contains("文本"),
            "{}",
            p.errors[0].message
        );
        assert!(
            p.errors[1].message.contains("two decimals"),
            "{}",
            p.errors[1].message
        );
    }

    #[test]
    fn a_named_sheet_is_read_and_a_missing_one_or_a_non_workbook_is_refused() {
        let book = template(Format::Xlsx).unwrap();
        // The sheet to fill in has the headers and nothing else.
        let p = parse_sheet(&book, Format::Xlsx, Encoding::Auto, None).unwrap();
        assert!(p.rows.is_empty() && p.errors.is_empty());
        // Its examples are valid rows.
        let p = parse_sheet(&book, Format::Xlsx, Encoding::Auto, Some("示例 example")).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].1.amount_fen, Some(1_000_000));
        let e = parse_sheet(&book, Format::Xlsx, Encoding::Auto, Some("Sheet9")).unwrap_err();
        assert_eq!(e.code, codes::import::BAD_FILE);
        assert!(e.message.contains("示例 example"), "{}", e.message);
        let e = parse_sheet(
            b"PK\x03\x04 not really a zip",
            Format::Xlsx,
            Encoding::Auto,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code, codes::import::BAD_FILE);
        // The CSV template is the same header line, for Excel.
        let csv = template(Format::Csv).unwrap();
        assert!(csv.starts_with(b"\xEF\xBB\xBF") && csv.ends_with(b"\r\n"));
        let p = parse(&csv, Format::Csv, Encoding::Auto).unwrap();
        assert!(p.rows.is_empty() && p.errors.is_empty());
    }
}
