//! Rewrites of parsed conditions into faster forms with the same results.

use super::ast::{BoolExpr, Expr, Field, Key, Path};
use super::value::CmpOp;

/// Merges adjacent `attributes["k"] == "v"` terms of an `or` that test the same key into
/// one look-up. Only neighbours are merged, so no term that could fail is skipped or moved:
/// the result, errors included, is the same.
fn merge_equalities(terms: Vec<BoolExpr>) -> BoolExpr {
    let mut out: Vec<BoolExpr> = Vec::with_capacity(terms.len());
    for t in terms {
        let BoolExpr::AttrIsStr {
            field,
            key,
            value,
            equal: true,
        } = t
        else {
            out.push(t);
            continue;
        };
        let same_key = |f: &Field, k: &String| *f == field && *k == key;
        match out.last_mut() {
            Some(BoolExpr::AttrInStrs {
                field: f,
                key: k,
                values,
            }) if same_key(f, k) => values.push(value),
            Some(last @ BoolExpr::AttrIsStr { equal: true, .. }) if matches!(&*last, BoolExpr::AttrIsStr { field: f, key: k, .. } if same_key(f, k)) =>
            {
                let previous = std::mem::replace(last, BoolExpr::Const(false));
                let BoolExpr::AttrIsStr { value: first, .. } = previous else {
                    *last = previous;
                    continue;
                };
                *last = BoolExpr::AttrInStrs {
                    field,
                    key,
                    values: vec![first, value],
                };
            }
            _ => out.push(BoolExpr::AttrIsStr {
                field,
                key,
                value,
                equal: true,
            }),
        }
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        BoolExpr::Or(out)
    }
}

/// Rewrites the comparisons that have a faster equivalent form.
pub(crate) fn specialise(expr: BoolExpr) -> BoolExpr {
    let attr_str = |path: &Path, op: CmpOp, value: &str| -> Option<BoolExpr> {
        let maps = matches!(
            path.field,
            Field::Attributes | Field::ResourceAttributes | Field::EventAttributes
        );
        match (maps, path.keys.as_slice(), op) {
            (true, [Key::Str(key)], CmpOp::Eq | CmpOp::Ne) => Some(BoolExpr::AttrIsStr {
                field: path.field,
                key: key.clone(),
                value: value.to_string(),
                equal: op == CmpOp::Eq,
            }),
            _ => None,
        }
    };
    match expr {
        BoolExpr::Or(terms) => {
            let terms: Vec<BoolExpr> = terms.into_iter().map(specialise).collect();
            merge_equalities(terms)
        }
        BoolExpr::And(terms) => BoolExpr::And(terms.into_iter().map(specialise).collect()),
        BoolExpr::Not(inner) => BoolExpr::Not(Box::new(specialise(*inner))),
        BoolExpr::Cmp(Expr::Path(p), op, Expr::Str(v))
        | BoolExpr::Cmp(Expr::Str(v), op, Expr::Path(p)) => match attr_str(&p, op, &v) {
            Some(fast) => fast,
            None => BoolExpr::Cmp(Expr::Path(p), op, Expr::Str(v)),
        },
        other => other,
    }
}
