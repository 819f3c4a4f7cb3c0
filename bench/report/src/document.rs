//! A report as a list of blocks, written out as Markdown or as self-contained HTML.
//!
//! Hand-written rather than Markdown converted by a crate (pulldown-cmark): the report is only
//! headings, paragraphs, lists, tables and charts, one model rendered twice keeps both files
//! saying the same thing, and each format escapes text from results its own way. A Markdown
//! converter would pass raw HTML in a scenario name or error string straight through and would
//! still need a hook to inline the SVGs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A run of text inside a block.
#[derive(Debug, Clone)]
pub(crate) enum Inline {
    Text(String),
    Strong(String),
    Code(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Block {
    Heading(u8, Vec<Inline>),
    Para(Vec<Inline>),
    /// Something a reader must not miss (build profile, bottlenecks, incomplete runs).
    Warning(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    /// The first column is left-aligned, the others right-aligned (they hold numbers).
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A chart file, relative to the report.
    Chart {
        title: String,
        path: String,
    },
}

pub(crate) fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

pub(crate) fn strong(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

pub(crate) fn code(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

/// Backslash-escapes what Markdown would otherwise read as markup (or as inline HTML).
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn md_inlines(parts: &[Inline]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(t) => md_escape(t),
            // Emphasis markers must touch the text (`**a:** b`, not `**a: **b`) to count as markup.
            Inline::Strong(t) => {
                let inner = t.trim();
                let (lead, trail) = (&t[..t.len() - t.trim_start().len()], &t[t.trim_end().len()..]);
                format!("{lead}**{}**{trail}", md_escape(inner))
            }
            // A code span cannot escape backticks; a longer fence around it can.
            Inline::Code(t) if t.contains('`') => format!("`` {} ``", t.replace(['\n', '\r'], " ")),
            Inline::Code(t) => format!("`{}`", t.replace(['\n', '\r'], " ")),
        })
        .collect()
}

pub(crate) fn to_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "{} {}\n", "#".repeat(usize::from(*level)), md_inlines(t));
            }
            Block::Para(t) => {
                let _ = writeln!(out, "{}\n", md_inlines(t));
            }
            Block::Warning(t) => {
                let _ = writeln!(out, "> **⚠ Warning:** {}\n", md_inlines(t));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", md_inlines(item));
                }
                out.push('\n');
            }
            Block::Table { head, rows } => {
                let row = |cells: &[String]| {
                    format!("| {} |", cells.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "))
                };
                let _ = writeln!(out, "{}", row(head));
                let align: Vec<&str> = (0..head.len()).map(|i| if i == 0 { ":---" } else { "---:" }).collect();
                let _ = writeln!(out, "| {} |", align.join(" | "));
                for r in rows {
                    let _ = writeln!(out, "{}", row(r));
                }
                out.push('\n');
            }
            Block::Chart { title, path } => {
                let _ = writeln!(out, "![{}]({path})\n", md_escape(title));
            }
        }
    }
    out
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_inlines(parts: &[Inline]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(t) => html_escape(t),
            Inline::Strong(t) => format!("<strong>{}</strong>", html_escape(t)),
            Inline::Code(t) => format!("<code>{}</code>", html_escape(t)),
        })
        .collect()
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1900px;\
margin:2em auto;padding:0 1.5em;color:#1d1d1f;line-height:1.45}\
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2.2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.8em 0 1.4em;font-size:.92em}\
th,td{border:1px solid #d0d0d0;padding:.3em .7em;text-align:right;white-space:nowrap}\
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}\
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}\
.warning{background:#fff4e5;border-left:6px solid #e67700;padding:.6em 1em;margin:1em 0}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(820px,1fr));gap:1em}\
figure{margin:0;border:1px solid #e2e2e2;padding:.4em;max-width:940px}figure svg{width:100%;height:auto;display:block}\
figcaption{font-size:.85em;color:#555}";

/// The report as one HTML page; `charts` maps a chart's relative path to its SVG, inlined so the
/// page needs nothing else.
pub(crate) fn to_html(title: &str, blocks: &[Block], charts: &BTreeMap<String, String>) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        html_escape(title)
    );
    let mut in_charts = false;
    for block in blocks {
        let is_chart = matches!(block, Block::Chart { .. });
        if is_chart != in_charts {
            out.push_str(if is_chart { "<div class=\"charts\">\n" } else { "</div>\n" });
            in_charts = is_chart;
        }
        match block {
            Block::Heading(level, t) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", html_inlines(t));
            }
            Block::Para(t) => {
                let _ = writeln!(out, "<p>{}</p>", html_inlines(t));
            }
            Block::Warning(t) => {
                let _ = writeln!(out, "<div class=\"warning\"><strong>⚠ Warning:</strong> {}</div>", html_inlines(t));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", html_inlines(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", html_escape(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        let _ = write!(out, "<td>{}</td>", html_escape(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Chart { title, path } => {
                let svg = charts.get(path).map_or("<p>(chart missing)</p>", String::as_str);
                let _ = writeln!(
                    out,
                    "<figure>\n{svg}\n<figcaption>{} — <code>{}</code></figcaption>\n</figure>",
                    html_escape(title),
                    html_escape(path)
                );
            }
        }
    }
    if in_charts {
        out.push_str("</div>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
