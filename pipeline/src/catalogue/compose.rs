//! Composition of catalogue entries before they are typed: `extends` copies another experiment and
//! deep-merges this entry's fields over it (tables merge key by key, anything else is replaced);
//! `insert` adds layers after named layers of the inherited model; a follow-up starts from the
//! experiment it follows, without that experiment's sweep.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use toml::{Table, Value};

/// Keys that belong to an entry itself and are never inherited.
const OWN_KEYS: [&str; 5] = ["id", "description", "extends", "insert", "follow_up"];

/// A raw experiment entry and the file it came from.
pub(crate) struct RawEntry {
    pub file: String,
    pub table: Table,
}

/// `{ after = "max_pooling2d", layer = { type = "dropout", rate = 0.25 } }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Insert {
    after: String,
    layer: Value,
}

/// Resolves every entry's inheritance; returns the composed tables by id, without `extends` and
/// `insert` (a follow-up keeps its `follow_up`).
pub(crate) fn compose_all(entries: &[RawEntry]) -> Result<HashMap<String, Table>> {
    let by_id: HashMap<&str, &RawEntry> = entries.iter().filter_map(|e| Some((id_of(&e.table)?, e))).collect();
    let mut done = HashMap::new();
    for entry in entries {
        let id = id_of(&entry.table).ok_or_else(|| anyhow!("{}: an [[experiment]] has no id", entry.file))?;
        compose(id, &by_id, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

fn id_of(table: &Table) -> Option<&str> {
    table.get("id").and_then(Value::as_str)
}

fn compose(
    id: &str,
    by_id: &HashMap<&str, &RawEntry>,
    done: &mut HashMap<String, Table>,
    chain: &mut Vec<String>,
) -> Result<Table> {
    if let Some(table) = done.get(id) {
        return Ok(table.clone());
    }
    let entry = by_id.get(id).ok_or_else(|| anyhow!("no experiment {id} in the catalogue"))?;
    let origin = format!("{}: experiment {id}", entry.file);
    if chain.iter().any(|c| c == id) {
        bail!("{origin}: `extends` goes round in a circle ({} → {id})", chain.join(" → "));
    }
    chain.push(id.to_string());
    let own = &entry.table;
    let parent_id = match (own.get("extends"), own.get("follow_up")) {
        (Some(_), Some(_)) => bail!("{origin}: a follow-up starts from the experiment it follows; drop `extends`"),
        (Some(p), None) => Some((p.as_str().ok_or_else(|| anyhow!("{origin}: extends must be an experiment id"))?, false)),
        (None, Some(f)) => Some((
            f.get("of").and_then(Value::as_str).ok_or_else(|| anyhow!("{origin}: follow_up.of must name a swept experiment"))?,
            true,
        )),
        (None, None) => None,
    };
    let mut table = match parent_id {
        Some((parent, follow_up)) => {
            if !by_id.contains_key(parent) {
                bail!("{origin}: it extends {parent}, which is not in the catalogue");
            }
            let mut inherited = compose(parent, by_id, done, chain)?;
            for key in OWN_KEYS {
                inherited.remove(key);
            }
            if follow_up {
                inherited.remove("sweep");
            }
            inherited
        }
        None => Table::new(),
    };
    let mut overrides = own.clone();
    overrides.remove("extends");
    let inserts = overrides.remove("insert");
    merge(&mut table, &overrides);
    if let Some(inserts) = inserts {
        insert_layers(&mut table, inserts).with_context(|| origin.clone())?;
    }
    chain.pop();
    done.insert(id.to_string(), table.clone());
    Ok(table)
}

/// Deep merge: tables merge key by key, every other value replaces what was there.
fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Table(base)), Value::Table(over)) => merge(base, over),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Inserts each layer after the named layer of the model as it stands before any insertion.
fn insert_layers(table: &mut Table, inserts: Value) -> Result<()> {
    let inserts: Vec<Insert> = inserts.try_into().map_err(|e| anyhow!("insert: {}", e.to_string().trim()))?;
    let model_value = table.get("model").cloned().ok_or_else(|| anyhow!("insert: the experiment has no model"))?;
    let model: nnlab_nn::ModelSpec = model_value.try_into().map_err(|e| anyhow!("model: {}", e.to_string().trim()))?;
    let names: Vec<String> = model.plan()?.into_iter().map(|l| l.name).collect();
    let mut positions = Vec::with_capacity(inserts.len());
    for insert in inserts {
        let index = names.iter().position(|n| *n == insert.after).ok_or_else(|| {
            anyhow!("insert: no layer named `{}` to insert after (its layers: {})", insert.after, names.join(", "))
        })?;
        positions.push((index + 1, insert.layer));
    }
    // From the back, so that earlier positions stay valid; a stable sort keeps the declared order
    // of several layers inserted after the same one.
    positions.sort_by_key(|(index, _)| *index);
    let layers = table
        .get_mut("model")
        .and_then(|m| m.get_mut("layers"))
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("insert: the model has no layer list"))?;
    for (index, layer) in positions.into_iter().rev() {
        layers.insert(index, layer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<RawEntry> {
        let table: Table = text.parse().unwrap();
        table["experiment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| RawEntry { file: "x.toml".into(), table: e.as_table().unwrap().clone() })
            .collect()
    }

    const BASE: &str = r#"
[[experiment]]
id = "x.base"
description = "base"
dataset = "mnist"
model = { input = [784], layers = [{ type = "dense", units = 100, activation = "relu" }, { type = "dense", units = 10, activation = "softmax" }] }
train = { epochs = 10, batch_size = 128, optimizer = { name = "sgd", lr = 0.1 } }
"#;

    #[test]
    fn extends_merges_tables_and_replaces_values() {
        let text = format!(
            "{BASE}\n[[experiment]]\nid = \"x.long\"\ndescription = \"longer\"\nextends = \"x.base\"\ntrain.epochs = 30\n"
        );
        let composed = compose_all(&entries(&text)).unwrap();
        let long = &composed["x.long"];
        assert_eq!(long["train"]["epochs"].as_integer(), Some(30));
        assert_eq!(long["train"]["batch_size"].as_integer(), Some(128));
        assert_eq!(long["train"]["optimizer"]["lr"].as_float(), Some(0.1));
        assert_eq!(long["description"].as_str(), Some("longer"));
        assert!(long.get("extends").is_none());
    }

    #[test]
    fn insert_places_layers_after_named_ones() {
        let text = format!(
            "{BASE}\n[[experiment]]\nid = \"x.drop\"\ndescription = \"d\"\nextends = \"x.base\"\ninsert = [{{ after = \"dense\", layer = {{ type = \"dropout\", rate = 0.5 }} }}]\n"
        );
        let composed = compose_all(&entries(&text)).unwrap();
        let layers = composed["x.drop"]["model"]["layers"].as_array().unwrap();
        let types: Vec<&str> = layers.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["dense", "dropout", "dense"]);
        let err = compose_all(&entries(&text.replace("after = \"dense\"", "after = \"conv2d\""))).unwrap_err();
        assert!(format!("{err:#}").contains("no layer named `conv2d`") && format!("{err:#}").contains("x.drop"), "{err:#}");
    }

    #[test]
    fn unknown_parents_and_cycles_are_named() {
        let text = format!("{BASE}\n[[experiment]]\nid = \"x.a\"\ndescription = \"d\"\nextends = \"x.nope\"\n");
        let err = compose_all(&entries(&text)).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("x.a") && err.contains("x.nope"), "{err}");
        let cycle = "[[experiment]]\nid = \"x.a\"\ndescription = \"d\"\nextends = \"x.b\"\n[[experiment]]\nid = \"x.b\"\ndescription = \"d\"\nextends = \"x.a\"\n";
        let err = compose_all(&entries(cycle)).unwrap_err().to_string();
        assert!(err.contains("circle"), "{err}");
    }
}
