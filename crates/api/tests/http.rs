#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]
//! The HTTP contract: the unbonding golden vector and its corruptions, validation messages,
//! pagination (with and without the state filter), pubkey lookup, FP merge, 413, headers, CORS
//! (reference `unbonding_test.go`, `staker_test.go`, `finality_provider_test.go`,
//! `address_lookup_test.go`, `healthcheck_test.go`, `terms_acceptance_test.go`).

mod common;

use axum::body::Body;
use axum::http::Request;
use bitcoin::consensus::{deserialize, encode::serialize_hex};
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction};
use common::*;
use events::QueueName;
use serde_json::{json, Value};

const FP: &str = "03d5a0bb72d71993e435d6c5a70e2aa4db500a62cfaae33c56050deefee64ec0";

async fn golden_harness(b: Backend) -> Option<(Harness, Value)> {
    let h = Harness::new(b).await?;
    let g = golden();
    h.deliver(QueueName::ActiveStaking, &g["active_staking_event"])
        .await;
    Some((h, g))
}

async fn unbonding_golden_vector_is_accepted_once(b: Backend) {
    let Some((h, g)) = golden_harness(b).await else {
        return;
    };
    let hash = g["active_staking_event"]["staking_tx_hash_hex"]
        .as_str()
        .unwrap();
    let elig = format!("/v1/unbonding/eligibility?staking_tx_hash_hex={hash}");
    let r = h.get(&elig).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "null"));
    let body = g["unbonding_request"].to_string();
    let r = h.post("/v1/unbonding", &body).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (202, "null"));
    assert_eq!(r.headers["content-type"], "application/json");
    h.get(&elig)
        .await
        .assert_error(403, "FORBIDDEN", "delegation state is not active");
    h.post("/v1/unbonding", &body).await.assert_error(
        403,
        "FORBIDDEN",
        "delegation state is not active",
    );
    let reqs = h.store.unbonding_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0].request;
    assert_eq!(r.staking_tx_hash.to_string(), hash);
    assert_eq!(
        r.unbonding_tx_hash.to_string(),
        g["unbonding_request"]["unbonding_tx_hash_hex"]
    );
    assert_eq!(
        r.staker_signature_hex,
        g["unbonding_request"]["staker_signed_signature_hex"]
    );
    assert_eq!(r.staking_amount, Amount::from_sat(100_000));
    assert_eq!((r.staking_output_index, r.staking_timelock), (1, 100));
    assert_eq!(reqs[0].state, store::api::UnbondingRequestState::Accepted);
    // Unknown delegation: 403 with NOT_FOUND.
    h.get(&format!(
        "/v1/unbonding/eligibility?staking_tx_hash_hex={}",
        txid(9)
    ))
    .await
    .assert_error(403, "NOT_FOUND", "delegation not found");
}
both_backends!(golden_accepted, unbonding_golden_vector_is_accepted_once);

fn corrupt(g: &Value, f: impl FnOnce(&mut Transaction), fix_txid: bool) -> Value {
    let mut req = g["unbonding_request"].clone();
    let bytes = hex::decode(req["unbonding_tx_hex"].as_str().unwrap()).unwrap();
    let mut tx: Transaction = deserialize(&bytes).unwrap();
    f(&mut tx);
    req["unbonding_tx_hex"] = serialize_hex(&tx).into();
    if fix_txid {
        req["unbonding_tx_hash_hex"] = tx.compute_txid().to_string().into();
    }
    req
}

async fn each_single_field_corruption_is_rejected_with_the_reference_message(b: Backend) {
    let Some((h, g)) = golden_harness(b).await else {
        return;
    };
    let pre = "invalid unbonding tx hex: the unbonding tx is not a valid pre-signed unbonding tx: ";
    let mut cases: Vec<(&str, Value, String)> = vec![
        (
            "rbf",
            corrupt(&g, |t| t.input[0].sequence = Sequence(0xffff_fffd), true),
            format!("{pre}pre-signed tx must not be replaceable"),
        ),
        (
            "version 1",
            corrupt(&g, |t| t.version = bitcoin::transaction::Version::ONE, true),
            format!("{pre}tx version must be between 2 and 2"),
        ),
        (
            "value",
            corrupt(&g, |t| t.output[0].value = Amount::from_sat(89_999), true),
            "unbonding output does not match expected output".into(),
        ),
        (
            "script",
            corrupt(
                &g,
                |t| t.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51, 0x20]),
                true,
            ),
            "unbonding output does not match expected output".into(),
        ),
    ];
    let mut wrong_txid = g["unbonding_request"].clone();
    wrong_txid["unbonding_tx_hash_hex"] = txid(77).into();
    cases.push((
        "txid",
        wrong_txid,
        "unbonding_tx_hash_hex must match the hash calculated from the provided unbonding tx"
            .into(),
    ));
    let mut bad_sig = g["unbonding_request"].clone();
    let mut sig = hex::decode(bad_sig["staker_signed_signature_hex"].as_str().unwrap()).unwrap();
    sig[10] ^= 1;
    bad_sig["staker_signed_signature_hex"] = hex::encode(sig).into();
    cases.push(("signature", bad_sig, "invalid unbonding signature".into()));
    for (name, body, message) in cases {
        let r = h.post("/v1/unbonding", &body.to_string()).await;
        assert_eq!(r.status.as_u16(), 403, "{name}: {}", r.text);
        assert_eq!(
            r.json(),
            json!({"errorCode": "VALIDATION_ERROR", "message": message}),
            "{name}"
        );
    }
    // Nothing was stored and the delegation is still active.
    assert!(h.store.unbonding_requests().await.unwrap().is_empty());
    let hash = g["active_staking_event"]["staking_tx_hash_hex"]
        .as_str()
        .unwrap();
    assert_eq!(h.state_of(hash).await, "active");
}
both_backends!(
    golden_corruptions,
    each_single_field_corruption_is_rejected_with_the_reference_message
);

async fn unbonding_request_syntax_is_checked_in_order(b: Backend) {
    let Some((h, g)) = golden_harness(b).await else {
        return;
    };
    let req = &g["unbonding_request"];
    let with = |field: &str, v: &str| {
        let mut r = req.clone();
        r[field] = v.into();
        r.to_string()
    };
    for (body, message) in [
        ("{not json".to_owned(), "invalid request payload"),
        (
            with("staking_tx_hash_hex", "zz"),
            "invalid staking transaction hash",
        ),
        (
            with("unbonding_tx_hash_hex", "abc"),
            "invalid unbonding transaction hash",
        ),
        (
            with("unbonding_tx_hex", "00ff"),
            "invalid unbonding transaction hex",
        ),
        (
            with("staker_signed_signature_hex", "abcd"),
            "invalid staker signed signature hex",
        ),
    ] {
        h.post("/v1/unbonding", &body)
            .await
            .assert_error(400, "BAD_REQUEST", message);
    }
    h.post("/v1/unbonding", &with("staking_tx_hash_hex", &txid(5)))
        .await
        .assert_error(403, "NOT_FOUND", "delegation not found");
    // 413 on a declared oversized body.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
    let r = h.post("/v1/unbonding", &big).await;
    assert_eq!(r.status.as_u16(), 413);
    assert_eq!(r.text, "Request Entity Too Large");
}
both_backends!(
    unbonding_syntax,
    unbonding_request_syntax_is_checked_in_order
);

async fn query_validation_messages_match_the_reference(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let pk = key(1);
    for (uri, message) in [
        ("/v1/delegation", "staking_tx_hash_hex is required"),
        (
            "/v1/delegation?staking_tx_hash_hex=abc",
            "invalid staking_tx_hash_hex",
        ),
        ("/v1/staker/delegations", "staker_btc_pk is required"),
        (
            "/v1/staker/delegations?staker_btc_pk=00",
            "invalid staker_btc_pk",
        ),
        (
            &format!("/v1/staker/delegations?staker_btc_pk={pk}&pagination_key=ab!c"),
            "invalid pagination key format",
        ),
        (
            &format!("/v1/staker/delegations?staker_btc_pk={pk}&pagination_key=e30="),
            "Invalid pagination token",
        ),
        (
            &format!("/v1/staker/delegations?staker_btc_pk={pk}&state=foo"),
            "invalid delegation state: foo",
        ),
        ("/v1/finality-providers?fp_btc_pk=xyz", "invalid fp_btc_pk"),
        (
            "/v1/finality-providers?pagination_key=!!!!",
            "invalid pagination key format",
        ),
        ("/v1/staker/pubkey-lookup", "address is required"),
        (
            "/v1/staker/pubkey-lookup?address=1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "can not decode btc address: address's network is different from required",
        ),
        ("/v1/staker/delegation/check", "address is required"),
    ] {
        let r = h.get(uri).await;
        assert_eq!(r.status.as_u16(), 400, "{uri}: {}", r.text);
        assert_eq!(r.json()["errorCode"], "BAD_REQUEST", "{uri}");
        if !message.starts_with("can not decode") {
            assert_eq!(r.json()["message"], message, "{uri}");
        } else {
            assert!(
                r.json()["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("can not decode btc address: "),
                "{uri}: {}",
                r.text
            );
        }
    }
    h.get(&format!("/v1/delegation?staking_tx_hash_hex={}", txid(1)))
        .await
        .assert_error(
            404,
            "NOT_FOUND",
            "staking delegation not found, please retry",
        );
    // P2SH on the right network is decodable but unsupported.
    let p2sh = "2N3oefVeg6stiTb5Kh3ozCSkaqmx91FDbsm";
    h.get(&format!("/v1/staker/pubkey-lookup?address={p2sh}"))
        .await
        .assert_error(400, "BAD_REQUEST", "unsupported btc address type");
    let many: String = (0..11)
        .map(|i| format!("address={}&", store_mapping(i).taproot))
        .collect();
    h.get(&format!("/v1/staker/pubkey-lookup?{many}"))
        .await
        .assert_error(400, "BAD_REQUEST", "Maximum 10 address allowed");
    let r = h.get("/nope").await;
    assert_eq!(
        (r.status.as_u16(), r.text.as_str()),
        (404, "404 page not found\n")
    );
    let r = h
        .request(Request::delete("/v1/stats").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status.as_u16(), 405);
}
both_backends!(
    query_validation,
    query_validation_messages_match_the_reference
);

fn store_mapping(n: u64) -> store::api::AddressMapping {
    api::state::address_mapping(key(n), bitcoin::Network::Signet)
}

async fn delegations_paginate_across_pages_with_and_without_state_filter(b: Backend) {
    let Some(h) = Harness::with_page_size(b, 3).await else {
        return;
    };
    let staker = key(1);
    // 8 delegations, heights with ties; every other one unbonded later.
    let heights = [110, 120, 120, 130, 130, 130, 140, 150];
    for (i, height) in heights.iter().enumerate() {
        let hash = txid(i as u64);
        h.deliver(
            QueueName::ActiveStaking,
            &active_event(&hash, &staker, FP, 1_000, *height, false),
        )
        .await;
        if i % 2 == 0 {
            h.deliver(QueueName::ExpiredStaking, &expired_event(&hash, "active"))
                .await;
        }
    }
    // Another staker's delegation never shows.
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&txid(50), &key(2), FP, 1_000, 135, false),
    )
    .await;
    let collect = |state: Option<&'static str>| {
        let h = &h;
        async move {
            let mut seen: Vec<(u64, String, String)> = Vec::new();
            let mut key_param = String::new();
            let mut pages = 0;
            loop {
                let mut uri = format!("/v1/staker/delegations?staker_btc_pk={staker}");
                if let Some(s) = state {
                    uri.push_str(&format!("&state={s}"));
                }
                if !key_param.is_empty() {
                    uri.push_str(&format!("&pagination_key={key_param}"));
                }
                let r = h.get(&uri).await;
                assert_eq!(r.status.as_u16(), 200, "{}", r.text);
                let j = r.json();
                pages += 1;
                for d in j["data"].as_array().unwrap() {
                    seen.push((
                        d["staking_tx"]["start_height"].as_u64().unwrap(),
                        d["staking_tx_hash_hex"].as_str().unwrap().to_owned(),
                        d["state"].as_str().unwrap().to_owned(),
                    ));
                }
                key_param = j["pagination"]["next_key"].as_str().unwrap().to_owned();
                if key_param.is_empty() {
                    break;
                }
            }
            (pages, seen)
        }
    };
    let (pages, all) = collect(None).await;
    assert_eq!(all.len(), 8);
    assert_eq!(pages, 3);
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(all, sorted, "height desc, hash asc, no repeats");
    let (pages, active) = collect(Some("active")).await;
    assert_eq!(active.len(), 4);
    assert_eq!(pages, 2);
    assert!(
        active.iter().all(|d| d.2 == "active"),
        "filter kept on page 2: {active:?}"
    );
    let (_, unbonded) = collect(Some("unbonded")).await;
    assert_eq!(unbonded.len(), 4);
    // Empty list is [] with an empty key.
    let r = h
        .get(&format!("/v1/staker/delegations?staker_btc_pk={}", key(3)))
        .await
        .json();
    assert_eq!(r, json!({"data": [], "pagination": {"next_key": ""}}));
    // The token is accepted URL-safe or standard, padded or not.
    let first = h
        .get(&format!("/v1/staker/delegations?staker_btc_pk={staker}"))
        .await
        .json();
    let token = first["pagination"]["next_key"].as_str().unwrap().to_owned();
    let unpadded = token.trim_end_matches('=').to_owned();
    for t in [token.clone(), unpadded] {
        let r = h
            .get(&format!(
                "/v1/staker/delegations?staker_btc_pk={staker}&pagination_key={t}"
            ))
            .await;
        assert_eq!(r.status.as_u16(), 200, "{t}: {}", r.text);
        assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);
    }
}
both_backends!(
    pagination,
    delegations_paginate_across_pages_with_and_without_state_filter
);

async fn pubkey_lookup_and_delegation_check_use_the_address_mapping(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let staker = key(1);
    let m = store_mapping(1);
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&txid(1), &staker, FP, 1_000, 120, false),
    )
    .await;
    let unknown = store_mapping(2).taproot;
    let r = h
        .get(&format!(
            "/v1/staker/pubkey-lookup?address={}&address={}&address={}&address={unknown}",
            m.taproot, m.native_segwit_even, m.native_segwit_odd
        ))
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let pk = staker.to_string();
    assert_eq!(
        r.json(),
        json!({"data": {m.taproot.clone(): pk, m.native_segwit_even.clone(): pk, m.native_segwit_odd.clone(): pk}})
    );
    let r = h
        .get(&format!("/v1/staker/pubkey-lookup?address={unknown}"))
        .await;
    assert_eq!(r.json(), json!({"data": {}}));
    let check = |addr: String, tf: &'static str| {
        let h = &h;
        async move {
            h.get(&format!("/v1/staker/delegation/check?address={addr}{tf}"))
                .await
        }
    };
    assert_eq!(
        check(m.taproot.clone(), "").await.json(),
        json!({"data": true, "code": 0})
    );
    // The golden timestamp is in 2024, so "today" finds nothing.
    assert_eq!(
        check(m.taproot.clone(), "&timeframe=today").await.json(),
        json!({"data": false, "code": 0})
    );
    check(m.taproot.clone(), "&timeframe=week")
        .await
        .assert_error(400, "BAD_REQUEST", "invalid timeframe value");
    assert_eq!(
        check(unknown, "").await.json(),
        json!({"data": false, "code": 0})
    );
    h.deliver(QueueName::UnbondingStaking, &unbonding_event(&txid(1), 130))
        .await;
    assert_eq!(
        check(m.native_segwit_even.clone(), "").await.json(),
        json!({"data": false, "code": 0})
    );
}
both_backends!(
    pubkey_lookup,
    pubkey_lookup_and_delegation_check_use_the_address_mapping
);

async fn finality_providers_merge_the_file_with_stats(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{TESTDATA}/finality-providers-test.json")).unwrap(),
    )
    .unwrap();
    let file_keys: Vec<String> = file["finality_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let e = f["eots_pk"].as_str().unwrap_or("");
            if e.is_empty() {
                f["btc_pk"].as_str().unwrap().to_owned()
            } else {
                e.to_owned()
            }
        })
        .collect();
    // No stats: the file, in file order, zero stats.
    let r = h.get("/v1/finality-providers").await.json();
    let keys: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["btc_pk"].as_str().unwrap())
        .collect();
    assert_eq!(keys, file_keys);
    assert_eq!(r["data"][0]["active_tvl"], 0);
    assert_eq!(r["pagination"]["next_key"], "");
    // Stake on the second file FP and on an FP absent from the file.
    let unregistered = key(500).to_string();
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&txid(1), &key(1), &file_keys[1], 5_000, 120, false),
    )
    .await;
    h.deliver(
        QueueName::ActiveStaking,
        &active_event(&txid(2), &key(2), &unregistered, 9_000, 120, false),
    )
    .await;
    let r = h.get("/v1/finality-providers").await.json();
    let data = r["data"].as_array().unwrap();
    assert_eq!(data.len(), file_keys.len() + 1);
    assert_eq!(data[0]["btc_pk"], unregistered.as_str());
    assert_eq!(data[0]["commission"], "");
    assert_eq!(data[0]["description"]["moniker"], "");
    assert_eq!(data[0]["active_tvl"], 9_000);
    assert_eq!(data[1]["btc_pk"], file_keys[1].as_str());
    assert_eq!(data[1]["active_tvl"], 5_000);
    assert_eq!(
        data[1]["description"],
        file["finality_providers"][1]["description"]
    );
    let rest: Vec<&str> = data[2..]
        .iter()
        .map(|f| f["btc_pk"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = file_keys
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, k)| k.as_str())
        .collect();
    assert_eq!(
        rest, expected,
        "file FPs without stats appended in file order"
    );
    // Single-FP modes.
    let one = h
        .get(&format!(
            "/v1/finality-providers?fp_btc_pk={}",
            file_keys[1]
        ))
        .await
        .json();
    assert_eq!(one["data"][0]["active_tvl"], 5_000);
    assert!(one.get("pagination").is_none());
    let file_only = h
        .get(&format!(
            "/v1/finality-providers?fp_btc_pk={}",
            file_keys[0]
        ))
        .await
        .json();
    assert_eq!(file_only["data"][0]["total_tvl"], 0);
    let nothing = h
        .get(&format!("/v1/finality-providers?fp_btc_pk={}", key(501)))
        .await;
    assert_eq!(nothing.text, r#"{"data":null}"#);
    let random = h.get("/v1/finality-providers?sort=random").await.json();
    assert_eq!(
        random["data"].as_array().unwrap().len(),
        file_keys.len() + 1
    );
}
both_backends!(fp_merge, finality_providers_merge_the_file_with_stats);

async fn top_stakers_paginate_by_active_tvl_with_ties_broken(b: Backend) {
    let Some(h) = Harness::with_page_size(b, 2).await else {
        return;
    };
    let r = h.get("/v1/stats/staker").await;
    assert_eq!(r.text, r#"{"data":null,"pagination":{"next_key":""}}"#);
    for i in 0..5u64 {
        let value = if i < 3 { 1_000 } else { 2_000 + i };
        h.deliver(
            QueueName::ActiveStaking,
            &active_event(&txid(i), &key(i), FP, value, 120, false),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let uri = if next.is_empty() {
            "/v1/stats/staker".to_owned()
        } else {
            format!("/v1/stats/staker?pagination_key={next}")
        };
        let j = h.get(&uri).await.json();
        pages += 1;
        for s in j["data"].as_array().unwrap() {
            seen.push((
                s["active_tvl"].as_i64().unwrap(),
                s["staker_pk_hex"].as_str().unwrap().to_owned(),
            ));
        }
        next = j["pagination"]["next_key"].as_str().unwrap().to_owned();
        if next.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, sorted);
}
both_backends!(
    top_stakers,
    top_stakers_paginate_by_active_tvl_with_ties_broken
);

async fn healthcheck_headers_cors_params_and_terms(b: Backend) {
    let Some(h) = Harness::new(b).await else {
        return;
    };
    let r = h.get("/healthcheck").await;
    assert_eq!(r.text, r#"{"data":"Server is up and running"}"#);
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-xss-protection"], "1; mode=block");
    assert_eq!(
        r.headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'; script-src 'self';"));
    let pre = h
        .request(
            Request::options("/healthcheck")
                .header("origin", "https://example.com")
                .header("access-control-request-method", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(pre.status.is_success(), "{:?}", pre.status);
    assert_eq!(pre.headers["access-control-allow-origin"], "*");
    assert_eq!(pre.headers["access-control-allow-methods"], "GET");
    let galxe = h
        .request(
            Request::options("/v1/staker/delegation/check")
                .header("origin", "https://dashboard.galxe.com")
                .header("access-control-request-method", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(galxe.status.as_u16(), 204);
    assert_eq!(
        galxe.headers["access-control-allow-origin"],
        "https://dashboard.galxe.com"
    );
    assert_eq!(
        galxe.headers["access-control-allow-methods"],
        "GET, OPTIONS, POST"
    );
    // Params echo the file.
    let p = h.get("/v1/global-params").await.json();
    let versions = p["data"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 4);
    assert_eq!(versions[0]["tag"], "01020304");
    assert_eq!(versions[0]["staking_cap"], 5_000_000);
    assert_eq!(versions[0]["cap_height"], 0);
    assert_eq!(versions[2]["staking_cap"], 0);
    assert!(versions[2]["cap_height"].as_u64().unwrap() > 0);
    // Terms logging.
    let addr = store_mapping(1).taproot;
    let ok = h
        .post(
            "/log-terms-acceptance",
            &json!({"address": addr, "public_key": key(1).to_string()}).to_string(),
        )
        .await;
    assert_eq!(ok.json(), json!({"data": {"status": true}}));
    h.post("/log-terms-acceptance", "{").await.assert_error(
        400,
        "BAD_REQUEST",
        "Invalid request payload",
    );
    h.post(
        "/log-terms-acceptance",
        &json!({"address": "nope", "public_key": key(1).to_string()}).to_string(),
    )
    .await
    .assert_error(400, "BAD_REQUEST", "Invalid Bitcoin address");
    h.post(
        "/log-terms-acceptance",
        &json!({"address": addr, "public_key": "00"}).to_string(),
    )
    .await
    .assert_error(400, "BAD_REQUEST", "Invalid public key");
    assert_eq!(h.store.terms_count().await.unwrap(), 1);
    // Ordinals endpoint absent without config; OpenAPI served.
    assert_eq!(
        h.post("/v1/ordinals/verify-utxos", "{}")
            .await
            .status
            .as_u16(),
        404
    );
    let doc = h.get("/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/v1/unbonding"].is_object());
    assert!(doc["paths"].get("/v1/ordinals/verify-utxos").is_none());
    let ui = h.get("/swagger/").await;
    assert_eq!(ui.status.as_u16(), 200);
    assert!(ui.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("'unsafe-inline'"));
}
both_backends!(
    server_conventions,
    healthcheck_headers_cors_params_and_terms
);
