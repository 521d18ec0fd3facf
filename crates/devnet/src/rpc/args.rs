//! Positional and named RPC arguments with Bitcoin Core's type errors.

use std::str::FromStr;

use bitcoin::{Amount, Denomination};
use serde_json::Value;

use super::{code, RpcError};

/// The arguments of one call, positional (named ones are mapped by the method's names).
#[derive(Debug)]
pub struct Args {
    method: String,
    names: &'static [&'static str],
    values: Vec<Value>,
}

/// Core's name for a JSON value's type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Args {
    /// Maps `params` (array, object or null) onto the method's argument `names`; `required` is
    /// how many leading arguments must be present.
    pub fn new(
        method: &str,
        names: &'static [&'static str],
        required: usize,
        params: Value,
    ) -> Result<Self, RpcError> {
        let values = match params {
            Value::Null => Vec::new(),
            Value::Array(v) => v,
            Value::Object(map) => {
                let mut values = vec![Value::Null; names.len()];
                for (key, value) in map {
                    let Some(pos) = names.iter().position(|n| *n == key) else {
                        return Err(RpcError::new(
                            code::INVALID_PARAMETER,
                            format!("Unknown named parameter {key}"),
                        ));
                    };
                    values[pos] = value;
                }
                while values.last() == Some(&Value::Null) {
                    values.pop();
                }
                values
            }
            _ => {
                return Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "Params must be an array or object",
                ))
            }
        };
        let args = Self {
            method: method.to_owned(),
            names,
            values,
        };
        if args.values.len() > names.len() || (0..required).any(|i| args.get(i).is_none()) {
            return Err(args.usage());
        }
        Ok(args)
    }

    fn usage(&self) -> RpcError {
        RpcError::new(
            code::MISC_ERROR,
            format!(
                "{} {}\n(wrong number of arguments; see bitcoin-cli help {})",
                self.method,
                self.names.join(" "),
                self.method
            ),
        )
    }

    fn name(&self, i: usize) -> &'static str {
        self.names.get(i).copied().unwrap_or("?")
    }

    fn type_error(&self, i: usize, v: &Value, expected: &str) -> RpcError {
        RpcError::new(
            code::TYPE_ERROR,
            format!(
                "JSON value of type {} for field {} is not of expected type {expected}",
                type_name(v),
                self.name(i)
            ),
        )
    }

    /// Argument `i`, `None` when absent or null.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i).filter(|v| !v.is_null())
    }

    /// A required argument.
    pub fn required(&self, i: usize) -> Result<&Value, RpcError> {
        self.get(i).ok_or_else(|| self.usage())
    }

    /// A string argument.
    pub fn str(&self, i: usize) -> Result<&str, RpcError> {
        let v = self.required(i)?;
        v.as_str().ok_or_else(|| self.type_error(i, v, "string"))
    }

    /// An integer argument.
    pub fn i64(&self, i: usize) -> Result<i64, RpcError> {
        let v = self.required(i)?;
        match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| RpcError::new(code::TYPE_ERROR, "JSON integer out of range")),
            _ => Err(self.type_error(i, v, "number")),
        }
    }

    /// An optional integer argument.
    pub fn opt_i64(&self, i: usize, default: i64) -> Result<i64, RpcError> {
        if self.get(i).is_some() {
            self.i64(i)
        } else {
            Ok(default)
        }
    }

    /// An optional boolean argument.
    pub fn opt_bool(&self, i: usize, default: bool) -> Result<bool, RpcError> {
        match self.get(i) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.type_error(i, v, "bool")),
        }
    }

    /// An array argument.
    pub fn array(&self, i: usize) -> Result<&Vec<Value>, RpcError> {
        let v = self.required(i)?;
        v.as_array().ok_or_else(|| self.type_error(i, v, "array"))
    }

    /// A 32-byte hash given as 64 hex digits (Core's `ParseHashV`).
    pub fn hash<H: FromStr>(&self, i: usize) -> Result<H, RpcError> {
        let s = self.str(i)?;
        parse_hash(s, self.name(i))
    }

    /// A BTC amount (number or string, at most 8 decimals), Core's `AmountFromValue`.
    pub fn amount(&self, i: usize) -> Result<Amount, RpcError> {
        amount_from_value(self.required(i)?)
    }
}

/// Core's `ParseHashV`.
pub fn parse_hash<H: FromStr>(s: &str, name: &str) -> Result<H, RpcError> {
    if s.len() != 64 {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            format!("{name} must be of length 64 (not {}, for '{s}')", s.len()),
        ));
    }
    H::from_str(s).map_err(|_| {
        RpcError::new(
            code::INVALID_PARAMETER,
            format!("{name} must be hexadecimal string (not '{s}')"),
        )
    })
}

/// Core's `AmountFromValue`.
pub fn amount_from_value(v: &Value) -> Result<Amount, RpcError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(RpcError::new(
                code::TYPE_ERROR,
                "Amount is not a number or string",
            ))
        }
    };
    if text.starts_with('-') {
        return Err(RpcError::new(code::TYPE_ERROR, "Amount out of range"));
    }
    let parsed = if text.contains(['e', 'E']) {
        text.parse::<f64>()
            .ok()
            .and_then(|f| Amount::from_btc(f).ok())
    } else {
        Amount::from_str_in(&text, Denomination::Bitcoin).ok()
    };
    match parsed {
        Some(a) if a <= Amount::MAX_MONEY => Ok(a),
        Some(_) => Err(RpcError::new(code::TYPE_ERROR, "Amount out of range")),
        None => Err(RpcError::new(code::TYPE_ERROR, "Invalid amount")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_parameters_map_onto_positions_and_unknown_names_are_refused() {
        let args = Args::new(
            "getblock",
            &["blockhash", "verbosity"],
            1,
            json!({"verbosity": 2, "blockhash": "x"}),
        )
        .unwrap();
        assert_eq!(args.str(0).unwrap(), "x");
        assert_eq!(args.i64(1).unwrap(), 2);
        let err = Args::new(
            "getblock",
            &["blockhash", "verbosity"],
            1,
            json!({"nope": 1}),
        )
        .unwrap_err();
        assert_eq!(err, RpcError::new(-8, "Unknown named parameter nope"));
    }

    #[test]
    fn a_missing_required_argument_is_a_usage_error() {
        let err = Args::new("getblockhash", &["height"], 1, json!([])).unwrap_err();
        assert_eq!(err.code, -1);
    }

    #[test]
    fn a_wrong_type_names_the_field_like_core() {
        let args = Args::new("getblockhash", &["height"], 1, json!(["1"])).unwrap();
        assert_eq!(
            args.i64(0).unwrap_err(),
            RpcError::new(
                -3,
                "JSON value of type string for field height is not of expected type number"
            )
        );
    }

    proptest::proptest! {
        #[test]
        fn any_amount_printed_like_core_parses_back_to_the_same_amount(sat in 0..=Amount::MAX_MONEY.to_sat()) {
            let amount = Amount::from_sat(sat);
            let text = crate::checks::format_money(amount);
            proptest::prop_assert_eq!(amount_from_value(&json!(text)).unwrap(), amount);
            // The JSON number the RPC prints (BTC as f64) parses back exactly too.
            proptest::prop_assert_eq!(amount_from_value(&json!(amount.to_btc())).unwrap(), amount);
        }
    }

    #[test]
    fn amounts_accept_numbers_and_strings_with_at_most_eight_decimals() {
        assert_eq!(
            amount_from_value(&json!(0.1)).unwrap(),
            Amount::from_sat(10_000_000)
        );
        assert_eq!(
            amount_from_value(&json!("1.5")).unwrap(),
            Amount::from_sat(150_000_000)
        );
        assert_eq!(
            amount_from_value(&json!(1e-8)).unwrap(),
            Amount::from_sat(1)
        );
        assert_eq!(
            amount_from_value(&json!("0.000000001"))
                .unwrap_err()
                .message,
            "Invalid amount"
        );
        assert_eq!(
            amount_from_value(&json!(-1)).unwrap_err().message,
            "Amount out of range"
        );
        assert_eq!(
            amount_from_value(&json!(true)).unwrap_err().message,
            "Amount is not a number or string"
        );
    }
}
