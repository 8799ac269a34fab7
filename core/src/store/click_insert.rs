//! The click insert's SQL and values, shared by both backends (`insert_click_rows` in
//! `clicks.rs` runs them), derived from the click schema (`model::CLICK_FIELDS`).
//!
//! Why it is shaped this way (measured with `bench/callgrind.sh`): a batch is split into
//! statements of a fixed set of row counts ([`ROWS_PER_STATEMENT`]) and widths ([`Width`]:
//! how many of the 30 sub-id and 10 extra-param columns are listed), so there are 32 statement
//! texts per backend, built once, and the per-connection statement cache of sqlx finds them
//! prepared. Before, every batch built a text for its own size; SQLite re-parsed a
//! 90-row, 7 920-parameter statement for nearly every batch, which was a third of the
//! recording's cost. Values are visited in place (no per-click `Vec`). Most text columns are
//! empty on most clicks (sub_id_N, extra_param_N, utm_*, …): the statement reads every text
//! value as `COALESCE(?, '')`, and an empty text is bound as NULL, which neither side has to
//! allocate or copy; the stored value is the same ''.

use std::sync::OnceLock;

use crate::config::Backend;
use crate::model::{
    Access, CLICK_FIELDS, Click, EXTRA_PARAM_COUNT, SUB_ID_COUNT, single_value_columns,
};

/// Row counts of the insert statements, largest first; a batch of n clicks runs as a greedy
/// sum of these (200 = 3 × 64 + 2 × 4). 64 rows × 88 columns stays below SQLite's parameter
/// limit and far below PostgreSQL's 65 535.
pub(crate) const ROWS_PER_STATEMENT: [usize; 4] = [64, 16, 4, 1];

/// How many of the `sub_id_N` and `extra_param_N` columns (from 1) a statement lists; those
/// it leaves out take their default, ''. Most clicks carry a few sub ids or none, and each
/// listed column costs a bound value per row, so a batch is inserted by statements of the
/// narrowest width that holds its clicks ([`Width::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Width {
    pub sub_ids: usize,
    pub extra_params: usize,
}

/// The widths statements are built for: every pair of these sub-id and extra-param counts.
const SUB_ID_WIDTHS: [usize; 4] = [0, 5, 10, SUB_ID_COUNT];
const EXTRA_PARAM_WIDTHS: [usize; 2] = [0, EXTRA_PARAM_COUNT];

impl Width {
    /// Every column.
    pub(crate) const FULL: Width = Width {
        sub_ids: SUB_ID_COUNT,
        extra_params: EXTRA_PARAM_COUNT,
    };

    /// The narrowest built width that lists every non-empty sub id and extra param of `click`
    /// (grouping a batch by width reorders its rows, so click ids follow arrival only within
    /// a width).
    pub fn of(click: &Click) -> Width {
        let used = |values: &[String]| {
            values
                .iter()
                .rposition(|v| !v.is_empty())
                .map_or(0, |i| i + 1)
        };
        // Values past the last column (a longer vector than the model's) have nowhere to go.
        let fit = |used: usize, widths: &[usize]| {
            widths
                .iter()
                .copied()
                .find(|w| *w >= used)
                .unwrap_or(widths[widths.len() - 1])
        };
        Width {
            sub_ids: fit(used(&click.sub_ids), &SUB_ID_WIDTHS),
            extra_params: fit(used(&click.extra_params), &EXTRA_PARAM_WIDTHS),
        }
    }

    fn all() -> impl Iterator<Item = Width> {
        SUB_ID_WIDTHS.into_iter().flat_map(|sub_ids| {
            EXTRA_PARAM_WIDTHS
                .into_iter()
                .map(move |extra_params| Width {
                    sub_ids,
                    extra_params,
                })
        })
    }

    /// How many columns [`click_columns`] lists at this width.
    pub(crate) fn columns(self) -> usize {
        single_value_columns() + self.sub_ids + self.extra_params
    }
}

/// For each column of [`click_columns`], whether it holds text (taken from the values
/// [`for_each_click_value`] gives, so the two cannot disagree).
fn text_columns(width: Width) -> Vec<bool> {
    let mut kinds = Vec::new();
    for_each_click_value(&Click::blank(), width, |value| {
        kinds.push(matches!(value, ClickValue::Text(_)));
    });
    kinds
}

/// The click columns in insert order at `width` (the schema's order, `model::CLICK_FIELDS`,
/// without the columns the insert leaves to their defaults); [`for_each_click_value`] visits
/// values in exactly this order.
pub fn click_columns(width: Width) -> Vec<String> {
    let mut columns = Vec::with_capacity(width.columns());
    for field in CLICK_FIELDS {
        match field.access {
            Access::Table => {}
            Access::SubIds => columns.extend((1..=width.sub_ids).map(|i| format!("sub_id_{i}"))),
            Access::ExtraParams => {
                columns.extend((1..=width.extra_params).map(|i| format!("extra_param_{i}")))
            }
            _ => columns.push(field.column.to_string()),
        }
    }
    columns
}

/// One click value to bind, borrowed from the click.
pub use crate::model::FieldValue as ClickValue;

/// Calls `bind` with the click's values in [`click_columns`] order at `width`.
pub fn for_each_click_value<'a>(
    click: &'a Click,
    width: Width,
    mut bind: impl FnMut(ClickValue<'a>),
) {
    let numbered = |values: &'a [String], i: usize| values.get(i).map_or("", String::as_str);
    for field in CLICK_FIELDS {
        match field.access {
            Access::Table => {}
            Access::SubIds => {
                for i in 0..width.sub_ids {
                    bind(ClickValue::Text(numbered(&click.sub_ids, i)));
                }
            }
            Access::ExtraParams => {
                for i in 0..width.extra_params {
                    bind(ClickValue::Text(numbered(&click.extra_params, i)));
                }
            }
            _ => {
                if let Some(value) = field.value(click) {
                    bind(value);
                }
            }
        }
    }
}

/// The row counts of the statements that insert `n` clicks, largest first.
pub(crate) fn statement_rows(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let rows = ROWS_PER_STATEMENT.into_iter().find(|rows| *rows <= n)?;
        n -= rows;
        Some(rows)
    })
}

/// `INSERT INTO clicks (…) VALUES (…), … ON CONFLICT (sub_id) DO NOTHING` at `width` for
/// `rows` rows (one of [`ROWS_PER_STATEMENT`]), built once per process for every width.
/// SQLite gets anonymous `?` placeholders (sqlx binds them without looking up a parameter
/// name), PostgreSQL `$N`. A width that [`Width::of`] cannot return gets the full statement.
pub(crate) fn insert_statement(backend: Backend, width: Width, rows: usize) -> &'static str {
    type Texts = Vec<(Width, [[String; ROWS_PER_STATEMENT.len()]; 2])>;
    static TEXTS: OnceLock<Texts> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        Width::all()
            .map(|width| {
                let build = |backend: Backend| {
                    ROWS_PER_STATEMENT.map(|rows| build_insert(backend, width, rows))
                };
                (width, [build(Backend::Sqlite), build(Backend::Postgres)])
            })
            .collect()
    });
    let (_, sets) = texts
        .iter()
        .find(|(w, _)| *w == width)
        .or_else(|| texts.iter().find(|(w, _)| *w == Width::FULL))
        .expect("the full width is built");
    let set = match backend {
        Backend::Sqlite => &sets[0],
        Backend::Postgres => &sets[1],
    };
    let at = ROWS_PER_STATEMENT
        .iter()
        .position(|r| *r == rows)
        .unwrap_or(ROWS_PER_STATEMENT.len() - 1);
    &set[at]
}

fn build_insert(backend: Backend, width: Width, rows: usize) -> String {
    use std::fmt::Write;
    let columns = click_columns(width);
    let texts = text_columns(width);
    let mut sql = format!("INSERT INTO clicks ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for (column, &text) in texts.iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if text {
                sql.push_str("COALESCE(");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
            }
            if text {
                sql.push_str(", '')");
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (sub_id) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_the_fixed_sizes() {
        let split = |n| statement_rows(n).collect::<Vec<_>>();
        assert_eq!(split(0), Vec::<usize>::new());
        assert_eq!(split(1), vec![1]);
        assert_eq!(split(200), vec![64, 64, 64, 4, 4]);
        assert_eq!(split(63), vec![16, 16, 16, 4, 4, 4, 1, 1, 1]);
        for n in 0..300 {
            assert_eq!(statement_rows(n).sum::<usize>(), n);
        }
    }

    #[test]
    fn every_column_gets_one_value_and_one_placeholder() {
        let click = Click::blank();
        for width in Width::all() {
            let mut values = 0;
            for_each_click_value(&click, width, |_| values += 1);
            assert_eq!(values, click_columns(width).len());
            assert_eq!(values, width.columns());
            for rows in ROWS_PER_STATEMENT {
                let sqlite = insert_statement(Backend::Sqlite, width, rows);
                assert_eq!(sqlite.matches('?').count(), rows * values);
                let postgres = insert_statement(Backend::Postgres, width, rows);
                assert!(postgres.contains(&format!("${}) ON CONFLICT", rows * values)));
                assert!(!postgres.contains(&format!("${}", rows * values + 1)));
            }
        }
        assert_eq!(Width::FULL.columns(), 91);
    }

    #[test]
    fn a_click_gets_the_narrowest_width_that_holds_its_values() {
        let mut click = Click::blank();
        assert_eq!(
            Width::of(&click),
            Width {
                sub_ids: 0,
                extra_params: 0
            }
        );
        click.sub_ids[0] = "a".into();
        assert_eq!(
            Width::of(&click),
            Width {
                sub_ids: 5,
                extra_params: 0
            }
        );
        click.sub_ids[5] = "b".into();
        assert_eq!(Width::of(&click).sub_ids, 10);
        click.sub_ids[29] = "c".into();
        click.extra_params[0] = "d".into();
        assert_eq!(Width::of(&click), Width::FULL);
        // A longer vector than the model's still gets a built statement.
        click.sub_ids.push("past the last column".into());
        assert_eq!(Width::of(&click), Width::FULL);
        click.sub_ids.pop();
        // Whatever the width, the listed values hold every non-empty one.
        let mut listed = Vec::new();
        for_each_click_value(&click, Width::of(&click), |v| {
            if let ClickValue::Text(t) = v {
                listed.push(t.to_string());
            }
        });
        for value in ["a", "b", "c", "d"] {
            assert!(listed.iter().any(|l| l == value), "{value}");
        }
    }

    #[test]
    fn text_values_go_to_the_coalesced_placeholders() {
        let columns = click_columns(Width::FULL);
        let texts = text_columns(Width::FULL);
        assert_eq!(texts.len(), columns.len());
        let text = |name: &str| texts[columns.iter().position(|c| c == name).unwrap()];
        for name in [
            "sub_id",
            "visitor_code",
            "ip",
            "sub_id_30",
            "extra_param_10",
            "params",
        ] {
            assert!(text(name), "{name}");
        }
        for name in [
            "campaign_id",
            "created_at",
            "is_bot",
            "cost_micros",
            "longitude",
        ] {
            assert!(!text(name), "{name}");
        }
        let sql = insert_statement(Backend::Sqlite, Width::FULL, 1);
        assert_eq!(
            sql.matches("COALESCE(?, '')").count(),
            texts.iter().filter(|t| **t).count()
        );
    }
}
