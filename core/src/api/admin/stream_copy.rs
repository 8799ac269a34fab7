//! Copying a campaign's streams with what hangs on them (a campaign's clone).

use serde_json::{Map, Value};

use crate::api::{ApiError, AppState};
use crate::model::unix_now;
use crate::store::objects::{ChildRows, ObjectWrite, RowFilter, SqlValue, Table};
use crate::store::tables;

/// Copies the live streams of campaign `from` into campaign `to`, each with its filters,
/// triggers, landings and offers (positions, weights, actions and shares kept), as Keitaro's
/// campaign clone does. Each copy is one write through the object layer.
pub async fn copy_streams(state: &AppState, from: i64, to: i64) -> Result<(), ApiError> {
    let streams = state
        .store
        .object_rows(
            &tables::STREAMS,
            &RowFilter::live().equal("campaign_id", SqlValue::Int(from)),
        )
        .await?;
    if streams.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = streams
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_i64))
        .collect();
    let child_tables = [
        &tables::STREAM_FILTERS,
        &tables::STREAM_TRIGGERS,
        &tables::STREAM_LANDINGS,
        &tables::STREAM_OFFERS,
    ];
    let mut children = Vec::new();
    for table in child_tables {
        let rows = state
            .store
            .object_rows(table, &RowFilter::children_of("stream_id", ids.clone()))
            .await?;
        children.push((table, rows));
    }
    let now = unix_now();
    // A row's values as a write takes them, without its id, its parent and what `skip` names.
    let values = |table: &'static Table, row: &Map<String, Value>, skip: &[&str]| {
        table
            .columns
            .iter()
            .filter(|c| !skip.contains(&c.name))
            .map(|c| {
                let value = row.get(c.name).unwrap_or(&Value::Null);
                (c.name, SqlValue::from_json(value, c.ty))
            })
            .collect::<Vec<_>>()
    };
    for stream in &streams {
        let id = stream.get("id").and_then(Value::as_i64);
        let mut row = values(
            &tables::STREAMS,
            stream,
            &[
                "campaign_id",
                "file_key",
                "file_source",
                "created_at",
                "updated_at",
            ],
        );
        row.extend([
            ("campaign_id", SqlValue::Int(to)),
            ("created_at", SqlValue::Int(now)),
            ("updated_at", SqlValue::Int(now)),
        ]);
        let rows_of = |table: &'static Table, rows: &[Map<String, Value>]| {
            rows.iter()
                .filter(|r| r.get("stream_id").and_then(Value::as_i64) == id)
                .map(|r| {
                    let mut copy = values(table, r, &["stream_id", "created_at", "updated_at"]);
                    if table.column("created_at").is_some() {
                        copy.push(("created_at", SqlValue::Int(now)));
                        copy.push(("updated_at", SqlValue::Int(now)));
                    }
                    copy
                })
                .collect()
        };
        let write = ObjectWrite {
            table: &tables::STREAMS,
            id: None,
            values: row,
            children: children
                .iter()
                .map(|(table, rows)| ChildRows::of_stream(table, rows_of(table, rows)))
                .collect(),
        };
        state.store.object_write(&write).await?;
    }
    Ok(())
}
