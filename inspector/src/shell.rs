//! `inspector shell`: an interactive SQL prompt over the session, with line
//! editing and history. A statement may span lines and ends with `;`; an
//! error is printed and the prompt comes back.

use std::io::Write;
use std::path::Path;

use rustyline::error::ReadlineError;

use lakedb::session::Session;

use crate::output::{self, Format};

const HELP: &str = "\
Statements end with ; and may span lines. Examples:
  SELECT event_type, count(*) FROM bronze.events GROUP BY ALL;
  SELECT error_code, raw_text FROM dead_letters.events LIMIT 10;
  DESCRIBE bronze.events;
Commands:
  .tables   list schemas, tables and views
  .help     this text
  .quit     leave (also .exit or Ctrl-D); Ctrl-C drops the statement being typed";

const TABLES: &str = "SELECT table_schema AS schema, table_name AS name, table_type AS type \
     FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY ALL";

pub fn run(session: &mut Session, history: &Path) -> anyhow::Result<()> {
    let mut editor = rustyline::DefaultEditor::new()?;
    // No history yet is normal.
    let _ = editor.load_history(history);
    println!(
        "inspector shell: DuckDB {} over {}",
        duckdb_version(session),
        session.describe_access()
    );
    let views: Vec<String> = session
        .views()
        .map(|(table, layer)| layer.view(table))
        .collect();
    println!(
        "views: {}; .help for help, .quit to leave",
        views.join(", ")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "lake> "
        } else {
            "  ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('.') {
            let _ = editor.add_history_entry(trimmed);
            match trimmed {
                ".quit" | ".exit" => break,
                ".help" => println!("{HELP}"),
                ".tables" => execute(session, TABLES),
                other => println!("unknown command {other}; .help lists them"),
            }
            continue;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        let (statements, rest) = split_statements(&buffer);
        if statements.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(buffer.trim());
        for statement in statements {
            execute(session, &statement);
        }
        buffer = rest;
        if buffer.trim().is_empty() {
            buffer.clear();
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Losing history is not worth failing the session over.
    let _ = editor.save_history(history);
    Ok(())
}

/// Runs one statement and prints its result or its error.
fn execute(session: &mut Session, sql: &str) {
    // Data may have arrived since the last statement (or a mirror fallen behind).
    if let Err(e) = session.refresh() {
        eprintln!("warning: {e:#}");
    }
    let result = output::query(&session.conn, sql).and_then(|output| {
        let mut stdout = std::io::stdout().lock();
        output::write(&output, Format::Table, &mut stdout)?;
        if !output.schema.fields().is_empty() {
            let rows = output.rows();
            writeln!(stdout, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
    }
}

fn duckdb_version(session: &Session) -> String {
    session
        .conn
        .query_row("SELECT version()", [], |row| row.get::<_, String>(0))
        .unwrap_or_else(|_| "?".into())
}

/// Splits text into complete statements (each ending with `;` outside
/// quotes and comments) and the unfinished rest.
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                // A doubled quote inside is an escaped quote: the loop sees it as close + open.
                for (_, d) in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
            }
            '-' if matches!(chars.peek(), Some((_, '-'))) => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if matches!(chars.peek(), Some((_, '*'))) => {
                chars.next();
                let mut previous = ' ';
                for (_, d) in chars.by_ref() {
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            ';' => {
                let statement = text[start..=i].trim();
                if statement != ";" {
                    statements.push(statement.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    (statements, text[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let (done, rest) =
            split_statements("SELECT 1;\nSELECT ';' AS s, \"a;b\" -- c;\n;SELECT /* ; */ 2");
        assert_eq!(done, vec!["SELECT 1;", "SELECT ';' AS s, \"a;b\" -- c;\n;"]);
        assert_eq!(rest, "SELECT /* ; */ 2");
        let (done, rest) = split_statements("SELECT 'it''s;' ;  ");
        assert_eq!(done, vec!["SELECT 'it''s;' ;"]);
        assert_eq!(rest.trim(), "");
        let (done, rest) = split_statements("SELECT\n  1");
        assert!(done.is_empty());
        assert_eq!(rest, "SELECT\n  1");
    }
}
